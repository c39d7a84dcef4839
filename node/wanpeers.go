package node

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/trent-kms/trent/regions/membership"
)

// wanPeersFile, in the data dir, lists the WAN pool addresses of other regions' nodes this node
// last saw alive, one per line.
const wanPeersFile = "gossip-wan-peers"

// wanPeers remembers, across restarts, how to reach the other regions. A node finds the WAN pool
// through -wan-join seeds or through its region peers; when every node of a region restarts at
// once, none is left in the pool to bring the others back, and the first region's nodes usually
// have no -wan-join at all. Such a region relinks through the addresses it remembered.
type wanPeers struct {
	path   string
	region string
	saved  []string // sorted; what the file holds
}

func loadWANPeers(path, region string) (*wanPeers, error) {
	p := &wanPeers{path: path, region: region}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(data)) {
		if addr := strings.TrimSpace(line); addr != "" {
			p.saved = append(p.saved, addr)
		}
	}
	slices.Sort(p.saved)
	return p, nil
}

// update saves the WAN addresses of the other regions' alive members, if any and if they
// changed, and returns the remembered addresses to join when the pool holds no alive member of
// another region (nil otherwise). An empty view never overwrites the file: the last regions seen
// are the ones to look for.
func (p *wanPeers) update(wan []membership.Member) (rejoin []string, err error) {
	var alive []string
	for _, m := range wan {
		if m.Region != p.region && m.Status == membership.StatusAlive && m.WANAddr != "" {
			alive = append(alive, m.WANAddr)
		}
	}
	if len(alive) == 0 {
		return p.saved, nil
	}
	slices.Sort(alive)
	alive = slices.Compact(alive)
	if slices.Equal(alive, p.saved) {
		return nil, nil
	}
	if err := writeFileAtomic(p.path, []byte(strings.Join(alive, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	p.saved = alive
	return nil, nil
}

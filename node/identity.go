package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// identity is what a node keeps about itself across restarts: its id and the
// addresses it was last reached at, so a node started with port 0 comes back
// on the same ports and its peers' Raft configuration stays valid.
type identity struct {
	NodeID        string `json:"node_id"`
	RaftAddr      string `json:"raft_addr"`
	GRPCAddr      string `json:"grpc_addr"`
	GossipLANAddr string `json:"gossip_lan_addr,omitempty"`
	GossipWANAddr string `json:"gossip_wan_addr,omitempty"`
}

const identityFile = "node.json"

func loadIdentity(dataDir string) (identity, error) {
	var id identity
	b, err := os.ReadFile(filepath.Join(dataDir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("%s: %w", identityFile, err)
	}
	return id, nil
}

func saveIdentity(dataDir string, id identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dataDir, identityFile), append(b, '\n'), 0o600)
}

func newNodeID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "node-" + hex.EncodeToString(b), nil
}

// preferredAddr returns the remembered address when the flag asks for any
// port (":0") and one is remembered.
func preferredAddr(flagAddr, remembered string) string {
	_, port, err := net.SplitHostPort(flagAddr)
	if err == nil && port == "0" && remembered != "" {
		return remembered
	}
	return flagAddr
}

// readOrCreateSecret reads a hex secret file, creating one with 32 random
// bytes when create is set and the file is missing.
func readOrCreateSecret(path string, create bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("%s is empty", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw)
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []byte(secret), nil
}

// writeFileAtomic writes via a temporary file and rename so a crash leaves
// either the old or the new content, then syncs the directory: until then
// the rename itself may not survive a power loss, and a node that forgot
// its identity or gossip key would come back as a stranger.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

package membership

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/trent-kms/trent/cluster"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []nodeMeta{
		{ID: "a", Region: "eu-1"},
		{ID: "node-7f3a", Region: "us-east-2", Role: cluster.Nonvoter, GRPCAddr: "10.0.0.7:7443", RaftAddr: "10.0.0.7:7444", Leader: true},
		{ID: "b", Region: "r", Leaving: true, RaftAddr: "[::1]:1"},
		{ID: "c", Region: "eu-1", GRPCAddr: "g", RaftAddr: "r", WANAddr: "10.0.0.7:7423"},
	} {
		got, err := decodeMeta(m.encode())
		if err != nil || got != m {
			t.Errorf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
	}
}

// A later revision of version 1 may append fields and flag bits; today's decoder must read the
// fields it knows and ignore the rest, so mixed versions share a pool during an upgrade.
func TestMetaIgnoresAppendedFieldsAndUnknownFlags(t *testing.T) {
	m := nodeMeta{ID: "a", Region: "eu-1", GRPCAddr: "g", RaftAddr: "r", Leader: true}
	b := m.encode()
	b[1] |= 0x80
	b = append(b, 3, 'n', 'e', 'w')
	got, err := decodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, m)
	}
}

// The WAN address was appended to version 1 behind a flag bit: metadata without it reads as
// before, and a decoder from before it ignores it.
func TestMetaWANAddrIsOptional(t *testing.T) {
	old := nodeMeta{ID: "a", Region: "eu-1", GRPCAddr: "g", RaftAddr: "r"}
	withWAN := old
	withWAN.WANAddr = "10.0.0.1:7423"
	b := withWAN.encode()
	if !bytes.HasPrefix(b[2:], old.encode()[2:]) || b[1]&flagWANAddr == 0 {
		t.Fatalf("the WAN address is not an appended field: %x", b)
	}
	if got, err := decodeMeta(old.encode()); err != nil || got.WANAddr != "" {
		t.Errorf("metadata without the field: %+v, %v", got, err)
	}
	if _, err := decodeMeta(b[:len(b)-1]); !errors.Is(err, errBadMeta) {
		t.Errorf("truncated WAN address: err = %v, want errBadMeta", err)
	}
}

func TestMetaRejectsMalformed(t *testing.T) {
	good := nodeMeta{ID: "a", Region: "eu-1", GRPCAddr: "g", RaftAddr: "r"}.encode()
	cases := map[string][]byte{
		"empty":         nil,
		"version only":  {metaVersion},
		"future format": append([]byte{metaVersion + 1}, good[1:]...),
		"truncated":     good[:len(good)-1],
		"length past end": func() []byte {
			b := bytes.Clone(good)
			b[2] = 200
			return b
		}(),
		"empty id":     nodeMeta{Region: "eu-1"}.encode(),
		"empty region": nodeMeta{ID: "a"}.encode(),
	}
	for name, b := range cases {
		if _, err := decodeMeta(b); !errors.Is(err, errBadMeta) {
			t.Errorf("%s: err = %v, want errBadMeta", name, err)
		}
	}
}

func TestMetaSizeLimitCheckedAtStart(t *testing.T) {
	cfg := validConfig()
	cfg.GRPCAddr = strings.Repeat("g", 300)
	cfg.RaftAddr = strings.Repeat("r", 300)
	if _, err := Start(t.Context(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start with %d-byte metadata: err = %v, want ErrInvalidConfig", len(cfg.meta().encode()), err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(nodeMeta{ID: "a", Region: "eu-1", GRPCAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2", Leader: true}.encode())
	f.Add([]byte{metaVersion, 0xff, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		again, err := decodeMeta(m.encode())
		if err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}

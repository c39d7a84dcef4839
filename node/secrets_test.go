package node_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// TestNoKeyMaterialInDataDirs scans every file every node wrote — Raft log,
// stable store, snapshots, the software HSM's store, identity files — for
// the plaintext of backing keys and data keys, raw and in hex and base64.
func TestNoKeyMaterialInDataDirs(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{SnapshotThreshold: 8, TrailingLogs: 2})
	c := r.KMS(r.Followers()[0])
	var secrets [][]byte
	for i := 0; i < 6; i++ {
		protection := []string{"SOFTWARE", "HSM"}[i%2]
		id := createKey(t, c, protection)
		if _, err := c.RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
			t.Fatal(err)
		}
		dk, err := c.GenerateDataKey(ctxT(t), &kmspb.GenerateDataKeyRequest{KeyId: id, KeySpec: "AES_256"})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, dk.GetPlaintext())
	}
	for _, i := range r.Running() {
		if err := r.Node(i).Raft().TakeSnapshot(); err != nil {
			t.Fatalf("node%d snapshot: %v", i, err)
		}
	}
	leader := r.Node(r.Leader())
	keys, _ := leader.State().ListKeys("", 1000)
	for _, k := range keys {
		for _, v := range k.GetVersions() {
			backing, err := leader.HSM().UnwrapKeyToken(ctxT(t), v.GetDomainKeyId(), v.GetKeyToken())
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, bytes.Clone(backing.Bytes()))
			backing.Zero()
		}
	}
	if got := len(secrets); got != 6+12 {
		t.Fatalf("collected %d secrets, want 18", got)
	}
	if fsm.CurrentVersion(keys[0]) == nil {
		t.Fatal("key without versions")
	}
	scanned := 0
	for i := 0; i < r.Len(); i++ {
		err := filepath.WalkDir(r.DataDir(i), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for _, s := range secrets {
				for _, form := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s))} {
					if bytes.Contains(data, form) {
						t.Errorf("%s contains key material in the clear", path)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if scanned < 3*3 {
		t.Fatalf("scanned only %d files", scanned)
	}
}

package node_test

import (
	"testing"

	"github.com/trent-kms/trent/hsm/hsmtest"
	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
)

// TestRegionOnPKCS11Tokens runs a region whose nodes each hold their domain
// key on their own SoftHSM2 token: the joiners receive it wrapped to their
// token's transport key.
func TestRegionOnPKCS11Tokens(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		token := hsmtest.NewSoftHSMToken(t)
		cfg.HSM = node.HSMPKCS11
		cfg.PKCS11Library = token.Library
		cfg.PKCS11Label = token.TokenLabel
		cfg.PKCS11PINFile = token.PINFile
	}})
	leader, followers := r.Leader(), r.Followers()
	for _, protection := range []string{"SOFTWARE", "HSM"} {
		id := createKey(t, r.KMS(followers[0]), protection)
		blob := encrypt(t, r.KMS(followers[1]), id, "on three tokens")
		if got := decrypt(t, r.KMS(leader), blob); got != "on three tokens" {
			t.Fatalf("%s: decrypt = %q", protection, got)
		}
	}
	r.Stop(followers[0])
	r.Restart(followers[0])
	id := createKey(t, r.KMS(followers[0]), "HSM")
	decrypt(t, r.KMS(followers[0]), encrypt(t, r.KMS(followers[0]), id, "after restart"))
}

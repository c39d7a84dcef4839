package hsmtest

import "testing"

// A software node and a PKCS#11 node must be able to share a region: domain
// keys move both ways and each reads the other's key tokens and sealed data.
func TestDomainKeyTransferBetweenSoftwareAndPKCS11(t *testing.T) {
	t.Run("software to PKCS#11", func(t *testing.T) {
		CheckDomainKeyTransfer(t, OpenSoftware(t), OpenSoftHSM(t))
	})
	t.Run("PKCS#11 to software", func(t *testing.T) {
		CheckDomainKeyTransfer(t, OpenSoftHSM(t), OpenSoftware(t))
	})
}

// Regions may run different backends: a multi-region key's material moves
// between them, and a region's signing key is shared by nodes of both kinds.
func TestMultiRegionBetweenSoftwareAndPKCS11(t *testing.T) {
	t.Run("key token batch software to PKCS#11", func(t *testing.T) {
		CheckKeyTokenBatchTransfer(t, OpenSoftware(t), OpenSoftHSM(t))
	})
	t.Run("key token batch PKCS#11 to software", func(t *testing.T) {
		CheckKeyTokenBatchTransfer(t, OpenSoftHSM(t), OpenSoftware(t))
	})
	t.Run("signing key software and PKCS#11", func(t *testing.T) {
		CheckSigningKeyTokenSharing(t, OpenSoftware(t), OpenSoftHSM(t))
	})
	t.Run("signing key PKCS#11 and software", func(t *testing.T) {
		CheckSigningKeyTokenSharing(t, OpenSoftHSM(t), OpenSoftware(t))
	})
}

// Other packages get several PKCS#11 nodes in one process, in parallel tests.
func TestSeveralSoftHSMTokensInOneProcess(t *testing.T) {
	for i := range 3 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			nodes := []interface{ Kind() string }{OpenSoftHSM(t), OpenSoftHSM(t), OpenSoftHSM(t)}
			for _, n := range nodes {
				if n.Kind() != "pkcs11" {
					t.Fatalf("node %d: kind %q", i, n.Kind())
				}
			}
		})
	}
}

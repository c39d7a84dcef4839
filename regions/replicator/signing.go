package replicator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
)

// signingContext separates batch signatures from anything else a region's
// signing key may sign later.
const signingContext = "trent replication batch v1\x00"

func batchDigest(batch []byte) []byte {
	h := sha256.New()
	h.Write([]byte(signingContext))
	h.Write(batch)
	return h.Sum(nil)
}

// verifyBatch checks sig over batch with a PKIX DER ECDSA P-256 public key.
func verifyBatch(publicKey, batch, sig []byte) error {
	parsed, err := x509.ParsePKIXPublicKey(publicKey)
	if err != nil {
		return fmt.Errorf("%w: signing public key does not parse: %v", ErrForged, err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: signing public key is not ECDSA P-256", ErrForged)
	}
	if !ecdsa.VerifyASN1(pub, batchDigest(batch), sig) {
		return fmt.Errorf("%w: signature does not verify", ErrForged)
	}
	return nil
}

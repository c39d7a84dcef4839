package fsm

import (
	"bytes"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// maxPolicyBytes is AWS KMS's limit on a key policy document.
const maxPolicyBytes = 32 << 10

// applyPutKeyPolicy replaces a key's policy. The proposer has checked that the
// document is JSON AWS would accept; Apply checks only what keeps the state
// sound, so a parser change can never make nodes disagree.
func (s *state) applyPutKeyPolicy(op *fsmpb.PutKeyPolicy) *Result {
	k, r := s.keyIn(op.GetKeyId(), "PutKeyPolicy", enabled, disabled)
	if r != nil {
		return r
	}
	policy := op.GetPolicy()
	if len(policy) == 0 {
		return reject(ErrInvalidArgument, "key %s: PutKeyPolicy needs a Policy", k.GetKeyId())
	}
	if r := checkPolicy(k.GetKeyId(), policy); r != nil {
		return r
	}
	if bytes.Equal(k.GetPolicy(), policy) {
		return &Result{Key: k}
	}
	return s.updateKey(k, func(k *fsmpb.Key) { k.Policy = policy })
}

// checkPolicy applies the size limit; an empty policy passes, because keys
// created before policies existed have none.
func checkPolicy(keyID string, policy []byte) *Result {
	if n := len(policy); n > maxPolicyBytes {
		return reject(ErrInvalidArgument, "key %s: Policy has %d bytes; the limit is %d", keyID, n, maxPolicyBytes)
	}
	return nil
}

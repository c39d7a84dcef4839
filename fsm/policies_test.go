package fsm

import (
	"bytes"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

const testPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"app"},"Action":"kms:*","Resource":"*"}]}`

func putPolicy(keyID string, policy []byte) *fsmpb.Command {
	return wrap(t0+hour, &fsmpb.PutKeyPolicy{KeyId: keyID, Policy: policy})
}

func TestPutKeyPolicy(t *testing.T) {
	policyIs := func(keyID string, want []byte) func(t *testing.T, h *harness, res *Result) {
		return func(t *testing.T, h *harness, res *Result) {
			k := h.key(keyID)
			if res.Key != k {
				t.Error("Result.Key is not the stored key")
			}
			if !bytes.Equal(k.GetPolicy(), want) {
				t.Errorf("policy %.40q..., want %.40q...", k.GetPolicy(), want)
			}
		}
	}
	runApplyCases(t, []applyCase{
		{
			name:  "enabled key",
			cmd:   putPolicy(keyEnabled, []byte(testPolicy)),
			check: policyIs(keyEnabled, []byte(testPolicy)),
		},
		{
			name:  "disabled key",
			cmd:   putPolicy(keyDisabled, []byte(testPolicy)),
			check: policyIs(keyDisabled, []byte(testPolicy)),
		},
		{
			name:  "replaces the previous policy",
			setup: func(h *harness) { h.mustApply(putPolicy(keyEnabled, []byte(`{"old":true}`))) },
			cmd:   putPolicy(keyEnabled, []byte(testPolicy)),
			check: policyIs(keyEnabled, []byte(testPolicy)),
		},
		{
			name:  "exactly the limit",
			cmd:   putPolicy(keyEnabled, bytes.Repeat([]byte{'x'}, maxPolicyBytes)),
			check: policyIs(keyEnabled, bytes.Repeat([]byte{'x'}, maxPolicyBytes)),
		},
		{
			name:    "over the limit",
			cmd:     putPolicy(keyEnabled, bytes.Repeat([]byte{'x'}, maxPolicyBytes+1)),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"key " + keyEnabled + ": Policy has 32769 bytes; the limit is 32768"},
		},
		{
			name:    "empty",
			cmd:     putPolicy(keyEnabled, nil),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"key " + keyEnabled + ": PutKeyPolicy needs a Policy"},
		},
		{
			name:    "pending deletion",
			cmd:     putPolicy(keyPending, []byte(testPolicy)),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; PutKeyPolicy needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     putPolicy(keyMissing, []byte(testPolicy)),
			wantErr: ErrNotFound,
			wantMsg: []string{"key " + keyMissing + " does not exist"},
		},
		{
			name:    "no key id",
			cmd:     putPolicy("", []byte(testPolicy)),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"PutKeyPolicy needs a key id"},
		},
	})
}

func TestPutKeyPolicyKeepsTheOldKeyIntact(t *testing.T) {
	h := newHarness(t)
	old := h.key(keyEnabled)
	h.mustApply(putPolicy(keyEnabled, []byte(testPolicy)))
	if len(old.GetPolicy()) != 0 {
		t.Error("PutKeyPolicy modified the published key instead of a clone")
	}
	if h.key(keyEnabled) == old {
		t.Error("the key was not replaced")
	}
}

func TestPutKeyPolicyWithTheSamePolicyKeepsTheKey(t *testing.T) {
	h := newHarness(t)
	first := h.mustApply(putPolicy(keyEnabled, []byte(testPolicy))).Key
	before := stateBytes(t, h.f)
	if again := h.mustApply(putPolicy(keyEnabled, []byte(testPolicy))).Key; again != first {
		t.Error("an unchanged policy replaced the key")
	}
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed")
	}
}

func TestCreateKeyPolicy(t *testing.T) {
	withPolicy := func(policy []byte) *fsmpb.Command {
		k := newKey(keyNew)
		k.Policy = policy
		return wrap(t0+hour, &fsmpb.CreateKey{Key: k})
	}
	runApplyCases(t, []applyCase{
		{
			name: "stores the proposer's policy",
			cmd:  withPolicy([]byte(testPolicy)),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.key(keyNew).GetPolicy(); string(got) != testPolicy {
					t.Errorf("policy %q", got)
				}
			},
		},
		{
			name: "empty, as keys created before policies",
			cmd:  withPolicy(nil),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.key(keyNew).GetPolicy(); len(got) != 0 {
					t.Errorf("policy %q", got)
				}
			},
		},
		{
			name:    "over the limit",
			cmd:     withPolicy(bytes.Repeat([]byte{'x'}, maxPolicyBytes+1)),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"key " + keyNew + ": Policy has 32769 bytes; the limit is 32768"},
		},
	})
}

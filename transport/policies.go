package transport

import (
	"context"
	"fmt"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/policy"
)

// defaultPolicyName is the only key policy name, as in AWS KMS.
const defaultPolicyName = "default"

func validatePolicyName(name string) error {
	if name != "" && name != defaultPolicyName {
		return invalid("PolicyName", "%q: the only policy name is %q", name, defaultPolicyName)
	}
	return nil
}

// checkPolicy parses a policy document a caller supplied and, unless bypass
// is set, runs the lockout safety check for the caller on the key.
func (s *Server) checkPolicy(ctx context.Context, doc, keyID string, bypass bool) error {
	return checkPolicyFor(ctx, doc, keyARN(s.region(), keyID), bypass)
}

// checkPolicyFor is checkPolicy for the key with resource name arn, which
// may be in another region: a replica's policy is checked in the primary
// region against the replica's name.
func checkPolicyFor(ctx context.Context, doc, arn string, bypass bool) error {
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		return fmt.Errorf("%w (field Policy)", err)
	}
	if bypass {
		return nil
	}
	if err := policy.CheckLockout(p, callerFrom(ctx), arn); err != nil {
		return fmt.Errorf("%w (field Policy)", err)
	}
	return nil
}

func (s *Server) PutKeyPolicy(ctx context.Context, req *kmspb.PutKeyPolicyRequest) (*kmspb.PutKeyPolicyResponse, error) {
	if err := validatePolicyName(req.GetPolicyName()); err != nil {
		return nil, err
	}
	if req.GetPolicy() == "" {
		return nil, invalid("Policy", "is required")
	}
	k, err := s.readKey(ctx, access{action: actionPutKeyPolicy}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	if err := s.checkPolicy(ctx, req.GetPolicy(), k.GetKeyId(), req.GetBypassPolicyLockoutSafetyCheck()); err != nil {
		return nil, err
	}
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_PutKeyPolicy{PutKeyPolicy: &fsmpb.PutKeyPolicy{
		KeyId: k.GetKeyId(), Policy: []byte(req.GetPolicy()),
	}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.PutKeyPolicyResponse{}, nil
}

func (s *Server) GetKeyPolicy(ctx context.Context, req *kmspb.GetKeyPolicyRequest) (*kmspb.GetKeyPolicyResponse, error) {
	if err := validatePolicyName(req.GetPolicyName()); err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionGetKeyPolicy}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	return &kmspb.GetKeyPolicyResponse{Policy: string(effectivePolicy(k)), PolicyName: defaultPolicyName}, nil
}

func (s *Server) ListKeyPolicies(ctx context.Context, req *kmspb.ListKeyPoliciesRequest) (*kmspb.ListKeyPoliciesResponse, error) {
	if _, err := listLimit(req.GetLimit()); err != nil {
		return nil, err
	}
	if req.GetMarker() != "" {
		return nil, invalid("Marker", "%q is not a marker this service returned", req.GetMarker())
	}
	if _, err := s.readKey(ctx, access{action: actionListKeyPolicies}, "KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	return &kmspb.ListKeyPoliciesResponse{PolicyNames: []string{defaultPolicyName}}, nil
}

package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/transport/kmspb"
)

// fake records every request and answers with queued replies, so tests can
// check both what kmsctl sent and how it prints what came back.
type fake struct {
	mu       sync.Mutex
	requests []proto.Message
	replies  map[string][]proto.Message // by method; the last one repeats
	errs     map[string]error           // by method
}

func (f *fake) reply(method string, replies ...proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[method] = replies
}

func (f *fake) fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

func (f *fake) received() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.requests...)
}

// answer records req and returns the next queued reply for method, or empty.
func answer[R proto.Message](f *fake, method string, req proto.Message, empty R) (R, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if err := f.errs[method]; err != nil {
		var zero R
		return zero, err
	}
	queue := f.replies[method]
	if len(queue) == 0 {
		return empty, nil
	}
	if len(queue) > 1 {
		f.replies[method] = queue[1:]
	}
	return queue[0].(R), nil
}

type fakeKMS struct {
	kmspb.UnimplementedKMSServer
	fake
}

// ctx keeps the fake's method signatures on one line each.
type ctx = context.Context

func (f *fakeKMS) CreateKey(_ ctx, r *kmspb.CreateKeyRequest) (*kmspb.CreateKeyResponse, error) {
	return answer(&f.fake, "CreateKey", r, &kmspb.CreateKeyResponse{})
}
func (f *fakeKMS) DescribeKey(_ ctx, r *kmspb.DescribeKeyRequest) (*kmspb.DescribeKeyResponse, error) {
	return answer(&f.fake, "DescribeKey", r, &kmspb.DescribeKeyResponse{})
}
func (f *fakeKMS) ListKeys(_ ctx, r *kmspb.ListKeysRequest) (*kmspb.ListKeysResponse, error) {
	return answer(&f.fake, "ListKeys", r, &kmspb.ListKeysResponse{})
}
func (f *fakeKMS) UpdateKeyDescription(_ ctx, r *kmspb.UpdateKeyDescriptionRequest) (*kmspb.UpdateKeyDescriptionResponse, error) {
	return answer(&f.fake, "UpdateKeyDescription", r, &kmspb.UpdateKeyDescriptionResponse{})
}
func (f *fakeKMS) EnableKey(_ ctx, r *kmspb.EnableKeyRequest) (*kmspb.EnableKeyResponse, error) {
	return answer(&f.fake, "EnableKey", r, &kmspb.EnableKeyResponse{})
}
func (f *fakeKMS) DisableKey(_ ctx, r *kmspb.DisableKeyRequest) (*kmspb.DisableKeyResponse, error) {
	return answer(&f.fake, "DisableKey", r, &kmspb.DisableKeyResponse{})
}
func (f *fakeKMS) ScheduleKeyDeletion(_ ctx, r *kmspb.ScheduleKeyDeletionRequest) (*kmspb.ScheduleKeyDeletionResponse, error) {
	return answer(&f.fake, "ScheduleKeyDeletion", r, &kmspb.ScheduleKeyDeletionResponse{})
}
func (f *fakeKMS) CancelKeyDeletion(_ ctx, r *kmspb.CancelKeyDeletionRequest) (*kmspb.CancelKeyDeletionResponse, error) {
	return answer(&f.fake, "CancelKeyDeletion", r, &kmspb.CancelKeyDeletionResponse{})
}
func (f *fakeKMS) EnableKeyRotation(_ ctx, r *kmspb.EnableKeyRotationRequest) (*kmspb.EnableKeyRotationResponse, error) {
	return answer(&f.fake, "EnableKeyRotation", r, &kmspb.EnableKeyRotationResponse{})
}
func (f *fakeKMS) DisableKeyRotation(_ ctx, r *kmspb.DisableKeyRotationRequest) (*kmspb.DisableKeyRotationResponse, error) {
	return answer(&f.fake, "DisableKeyRotation", r, &kmspb.DisableKeyRotationResponse{})
}
func (f *fakeKMS) GetKeyRotationStatus(_ ctx, r *kmspb.GetKeyRotationStatusRequest) (*kmspb.GetKeyRotationStatusResponse, error) {
	return answer(&f.fake, "GetKeyRotationStatus", r, &kmspb.GetKeyRotationStatusResponse{})
}
func (f *fakeKMS) RotateKeyOnDemand(_ ctx, r *kmspb.RotateKeyOnDemandRequest) (*kmspb.RotateKeyOnDemandResponse, error) {
	return answer(&f.fake, "RotateKeyOnDemand", r, &kmspb.RotateKeyOnDemandResponse{})
}
func (f *fakeKMS) ListKeyRotations(_ ctx, r *kmspb.ListKeyRotationsRequest) (*kmspb.ListKeyRotationsResponse, error) {
	return answer(&f.fake, "ListKeyRotations", r, &kmspb.ListKeyRotationsResponse{})
}
func (f *fakeKMS) CreateAlias(_ ctx, r *kmspb.CreateAliasRequest) (*kmspb.CreateAliasResponse, error) {
	return answer(&f.fake, "CreateAlias", r, &kmspb.CreateAliasResponse{})
}
func (f *fakeKMS) UpdateAlias(_ ctx, r *kmspb.UpdateAliasRequest) (*kmspb.UpdateAliasResponse, error) {
	return answer(&f.fake, "UpdateAlias", r, &kmspb.UpdateAliasResponse{})
}
func (f *fakeKMS) DeleteAlias(_ ctx, r *kmspb.DeleteAliasRequest) (*kmspb.DeleteAliasResponse, error) {
	return answer(&f.fake, "DeleteAlias", r, &kmspb.DeleteAliasResponse{})
}
func (f *fakeKMS) ListAliases(_ ctx, r *kmspb.ListAliasesRequest) (*kmspb.ListAliasesResponse, error) {
	return answer(&f.fake, "ListAliases", r, &kmspb.ListAliasesResponse{})
}
func (f *fakeKMS) TagResource(_ ctx, r *kmspb.TagResourceRequest) (*kmspb.TagResourceResponse, error) {
	return answer(&f.fake, "TagResource", r, &kmspb.TagResourceResponse{})
}
func (f *fakeKMS) UntagResource(_ ctx, r *kmspb.UntagResourceRequest) (*kmspb.UntagResourceResponse, error) {
	return answer(&f.fake, "UntagResource", r, &kmspb.UntagResourceResponse{})
}
func (f *fakeKMS) ListResourceTags(_ ctx, r *kmspb.ListResourceTagsRequest) (*kmspb.ListResourceTagsResponse, error) {
	return answer(&f.fake, "ListResourceTags", r, &kmspb.ListResourceTagsResponse{})
}
func (f *fakeKMS) Encrypt(_ ctx, r *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	return answer(&f.fake, "Encrypt", r, &kmspb.EncryptResponse{})
}
func (f *fakeKMS) Decrypt(_ ctx, r *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	return answer(&f.fake, "Decrypt", r, &kmspb.DecryptResponse{})
}
func (f *fakeKMS) ReEncrypt(_ ctx, r *kmspb.ReEncryptRequest) (*kmspb.ReEncryptResponse, error) {
	return answer(&f.fake, "ReEncrypt", r, &kmspb.ReEncryptResponse{})
}
func (f *fakeKMS) GenerateDataKey(_ ctx, r *kmspb.GenerateDataKeyRequest) (*kmspb.GenerateDataKeyResponse, error) {
	return answer(&f.fake, "GenerateDataKey", r, &kmspb.GenerateDataKeyResponse{})
}
func (f *fakeKMS) GenerateDataKeyWithoutPlaintext(_ ctx, r *kmspb.GenerateDataKeyWithoutPlaintextRequest) (*kmspb.GenerateDataKeyWithoutPlaintextResponse, error) {
	return answer(&f.fake, "GenerateDataKeyWithoutPlaintext", r, &kmspb.GenerateDataKeyWithoutPlaintextResponse{})
}
func (f *fakeKMS) GenerateRandom(_ ctx, r *kmspb.GenerateRandomRequest) (*kmspb.GenerateRandomResponse, error) {
	return answer(&f.fake, "GenerateRandom", r, &kmspb.GenerateRandomResponse{})
}

func (f *fakeKMS) PutKeyPolicy(_ ctx, r *kmspb.PutKeyPolicyRequest) (*kmspb.PutKeyPolicyResponse, error) {
	return answer(&f.fake, "PutKeyPolicy", r, &kmspb.PutKeyPolicyResponse{})
}
func (f *fakeKMS) GetKeyPolicy(_ ctx, r *kmspb.GetKeyPolicyRequest) (*kmspb.GetKeyPolicyResponse, error) {
	return answer(&f.fake, "GetKeyPolicy", r, &kmspb.GetKeyPolicyResponse{})
}
func (f *fakeKMS) ListKeyPolicies(_ ctx, r *kmspb.ListKeyPoliciesRequest) (*kmspb.ListKeyPoliciesResponse, error) {
	return answer(&f.fake, "ListKeyPolicies", r, &kmspb.ListKeyPoliciesResponse{})
}
func (f *fakeKMS) CreateGrant(_ ctx, r *kmspb.CreateGrantRequest) (*kmspb.CreateGrantResponse, error) {
	return answer(&f.fake, "CreateGrant", r, &kmspb.CreateGrantResponse{})
}
func (f *fakeKMS) ListGrants(_ ctx, r *kmspb.ListGrantsRequest) (*kmspb.ListGrantsResponse, error) {
	return answer(&f.fake, "ListGrants", r, &kmspb.ListGrantsResponse{})
}
func (f *fakeKMS) ListRetirableGrants(_ ctx, r *kmspb.ListRetirableGrantsRequest) (*kmspb.ListGrantsResponse, error) {
	return answer(&f.fake, "ListRetirableGrants", r, &kmspb.ListGrantsResponse{})
}
func (f *fakeKMS) RetireGrant(_ ctx, r *kmspb.RetireGrantRequest) (*kmspb.RetireGrantResponse, error) {
	return answer(&f.fake, "RetireGrant", r, &kmspb.RetireGrantResponse{})
}
func (f *fakeKMS) RevokeGrant(_ ctx, r *kmspb.RevokeGrantRequest) (*kmspb.RevokeGrantResponse, error) {
	return answer(&f.fake, "RevokeGrant", r, &kmspb.RevokeGrantResponse{})
}
func (f *fakeKMS) ReplicateKey(_ ctx, r *kmspb.ReplicateKeyRequest) (*kmspb.ReplicateKeyResponse, error) {
	return answer(&f.fake, "ReplicateKey", r, &kmspb.ReplicateKeyResponse{})
}
func (f *fakeKMS) UpdatePrimaryRegion(_ ctx, r *kmspb.UpdatePrimaryRegionRequest) (*kmspb.UpdatePrimaryRegionResponse, error) {
	return answer(&f.fake, "UpdatePrimaryRegion", r, &kmspb.UpdatePrimaryRegionResponse{})
}

type fakeCluster struct {
	kmspb.UnimplementedClusterServer
	fake
}

func (f *fakeCluster) Status(_ ctx, r *kmspb.ClusterStatusRequest) (*kmspb.ClusterStatusResponse, error) {
	return answer(&f.fake, "Status", r, &kmspb.ClusterStatusResponse{})
}
func (f *fakeCluster) RemoveNode(_ ctx, r *kmspb.RemoveNodeRequest) (*kmspb.RemoveNodeResponse, error) {
	return answer(&f.fake, "RemoveNode", r, &kmspb.RemoveNodeResponse{})
}
func (f *fakeCluster) ManagementEvents(_ ctx, r *kmspb.ManagementEventsRequest) (*kmspb.ManagementEventsResponse, error) {
	return answer(&f.fake, "ManagementEvents", r, &kmspb.ManagementEventsResponse{})
}

// testServer is a real gRPC server on a free loopback port.
type testServer struct {
	kms      *fakeKMS
	cluster  *fakeCluster
	endpoint string
}

func newFake() fake {
	return fake{replies: map[string][]proto.Message{}, errs: map[string]error{}}
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		kms:      &fakeKMS{fake: newFake()},
		cluster:  &fakeCluster{fake: newFake()},
		endpoint: lis.Addr().String(),
	}
	srv := grpc.NewServer(testServerCreds(t))
	kmspb.RegisterKMSServer(srv, ts.kms)
	kmspb.RegisterClusterServer(srv, ts.cluster)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return ts
}

type result struct {
	stdout, stderr string
	code           int
}

// runKmsctl calls run as main would, with the given standard input.
func runKmsctl(stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

// run runs kmsctl against the test server.
func (ts *testServer) run(args ...string) result {
	return runKmsctl("", append([]string{"--endpoint", ts.endpoint}, args...)...)
}

func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	return r
}

// wantRequests checks that f received exactly these requests, in order.
func wantRequests(t *testing.T, f *fake, want ...proto.Message) {
	t.Helper()
	got := f.received()
	if len(got) != len(want) {
		t.Fatalf("server got %d requests, want %d:\n%s", len(got), len(want), showMessages(got))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("request %d:\n got: %s\nwant: %s", i, prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
}

func showMessages(ms []proto.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(string(m.ProtoReflect().Descriptor().Name()) + " {" + prototext.Format(m) + "}\n")
	}
	return b.String()
}

// wantOutput compares output byte for byte.
func wantOutput(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

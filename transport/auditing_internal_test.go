package transport

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// auditHarness is a Server with just what the interceptors need, and the
// interceptor chain of a node (audit first, the error mapper last).
type auditHarness struct {
	s    *Server
	path string
}

func newAuditHarness(t *testing.T) *auditHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	s := &Server{
		cfg:   Config{NodeID: "node-a", Region: "eu-9"},
		log:   slog.New(slog.DiscardHandler),
		fsm:   fsm.New(fsm.Config{}),
		audit: l,
	}
	return &auditHarness{s: s, path: path}
}

var testPeer = &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4242}}

// call sends req to handler through AuditInterceptor and UnaryInterceptor.
func (h *auditHarness) call(method string, req any, handler grpc.UnaryHandler) (any, error) {
	info := &grpc.UnaryServerInfo{FullMethod: method}
	ctx := peer.NewContext(context.Background(), testPeer)
	inner := h.s.UnaryInterceptor()
	return h.s.AuditInterceptor()(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return inner(ctx, req, info, handler)
	})
}

func (h *auditHarness) records(t *testing.T) []audit.Record {
	t.Helper()
	recs, err := audit.Tail(h.path, 0, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func (h *auditHarness) only(t *testing.T) audit.Record {
	t.Helper()
	recs := h.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

const encryptMethod = "/trent.kms.v1.KMS/Encrypt"

func ok(context.Context, any) (any, error) { return &kmspb.EncryptResponse{}, nil }

func TestAuditRecordCarriesTheRequestsFacts(t *testing.T) {
	h := newAuditHarness(t)
	req := &kmspb.EncryptRequest{KeyId: "alias/app", EncryptionContext: map[string]string{"tenant": "t1", "<&>": "ü"}}
	if _, err := h.call(encryptMethod, req, func(ctx context.Context, _ any) (any, error) {
		noteResolved(ctx, "alias/app", "key-1")
		noteKey(ctx, "key-1")
		noteVersion(ctx, "key-1", []byte{0xab, 0xcd})
		return ok(ctx, nil)
	}); err != nil {
		t.Fatal(err)
	}
	r := h.only(t)
	if r.Node != "node-a" || r.Region != "eu-9" || r.Operation != "Encrypt" || r.KeyID != "key-1" ||
		r.KeyVersion != "abcd" || r.Alias != "alias/app" || r.Outcome != audit.OutcomeAllowed || r.ErrorCode != "" ||
		r.SourceAddr != "192.0.2.7:4242" || r.GrantID != "" {
		t.Errorf("record = %+v", r)
	}
	if !reflect.DeepEqual(r.EncryptionContext, req.EncryptionContext) {
		t.Errorf("context = %v, want %v", r.EncryptionContext, req.EncryptionContext)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(r.RequestID) {
		t.Errorf("request id %q is not 16 hex digits", r.RequestID)
	}
	if r.Time.IsZero() || r.Seq != 1 {
		t.Errorf("time %v, seq %d", r.Time, r.Seq)
	}
}

// ReEncrypt touches two keys: the record describes the source (opened
// first), with the source's alias and version, and both contexts.
func TestReEncryptRecordDescribesTheSourceKey(t *testing.T) {
	h := newAuditHarness(t)
	req := &kmspb.ReEncryptRequest{
		SourceEncryptionContext:      map[string]string{"tenant": "t1"},
		DestinationEncryptionContext: map[string]string{"tenant": "t2", "moved": "yes"},
	}
	_, err := h.call("/trent.kms.v1.KMS/ReEncrypt", req, func(ctx context.Context, _ any) (any, error) {
		noteResolved(ctx, "alias/dst", "key-dst") // DestinationKeyId, resolved first
		noteKey(ctx, "key-src")                   // open
		noteVersion(ctx, "key-src", []byte{1})
		noteResolved(ctx, "alias/src", "key-src") // SourceKeyId
		noteKey(ctx, "key-src")                   // authorize ReEncryptFrom
		noteKey(ctx, "key-dst")                   // authorize ReEncryptTo
		noteVersion(ctx, "key-dst", []byte{2})    // seal
		return &kmspb.ReEncryptResponse{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := h.only(t)
	if r.KeyID != "key-src" || r.Alias != "alias/src" || r.KeyVersion != "01" {
		t.Errorf("key %q alias %q version %q; want the source key's", r.KeyID, r.Alias, r.KeyVersion)
	}
	want := map[string]string{"source:tenant": "t1", "destination:tenant": "t2", "destination:moved": "yes"}
	if !reflect.DeepEqual(r.EncryptionContext, want) {
		t.Errorf("context = %v, want %v", r.EncryptionContext, want)
	}
}

// A request that fails before it authorizes or opens anything is recorded
// with what it named: here an alias that does not exist.
func TestFailedRequestRecordsTheKeyItNamed(t *testing.T) {
	h := newAuditHarness(t)
	_, err := h.call("/trent.kms.v1.KMS/DescribeKey", &kmspb.DescribeKeyRequest{}, func(ctx context.Context, _ any) (any, error) {
		noteResolved(ctx, "alias/missing", "")
		return nil, fmt.Errorf("%w: alias alias/missing does not exist", fsm.ErrNotFound)
	})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v", err)
	}
	r := h.only(t)
	if r.KeyID != "" || r.Alias != "alias/missing" || r.Outcome != audit.OutcomeError || r.ErrorCode != "NotFoundException" {
		t.Errorf("record = %+v", r)
	}
}

func TestAuditOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler grpc.UnaryHandler
		code    codes.Code
		outcome string
		errCode string
	}{
		{"allowed", ok, codes.OK, audit.OutcomeAllowed, ""},
		{"denied", func(context.Context, any) (any, error) {
			return nil, fmt.Errorf("%w: no policy allows kms:Encrypt", ErrAccessDenied)
		}, codes.PermissionDenied, audit.OutcomeDenied, "AccessDeniedException"},
		{"refused before the handler", func(context.Context, any) (any, error) {
			return nil, status.Error(codes.Unauthenticated, "AccessDeniedException: no verified client certificate identity")
		}, codes.Unauthenticated, audit.OutcomeDenied, "AccessDeniedException"},
		{"failed", func(context.Context, any) (any, error) {
			return nil, fmt.Errorf("%w: key k is disabled", ErrDisabled)
		}, codes.FailedPrecondition, audit.OutcomeError, "DisabledException"},
		{"peer status without a name", func(context.Context, any) (any, error) {
			return nil, status.Error(codes.Unavailable, "connection refused")
		}, codes.Unavailable, audit.OutcomeError, "KMSInternalException"},
		{"panic", func(context.Context, any) (any, error) { panic("boom") }, codes.Internal, audit.OutcomeError, "KMSInternalException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAuditHarness(t)
			_, err := h.call(encryptMethod, &kmspb.EncryptRequest{}, tc.handler)
			if status.Code(err) != tc.code {
				t.Fatalf("caller got %v, want code %v", err, tc.code)
			}
			if r := h.only(t); r.Outcome != tc.outcome || r.ErrorCode != tc.errCode {
				t.Errorf("outcome %q, error code %q; want %q, %q", r.Outcome, r.ErrorCode, tc.outcome, tc.errCode)
			}
		})
	}
}

func TestRequestFailsWhenItsRecordCannotBeAppended(t *testing.T) {
	h := newAuditHarness(t)
	if err := h.s.audit.Close(); err != nil {
		t.Fatal(err)
	}
	served := false
	resp, err := h.call(encryptMethod, &kmspb.EncryptRequest{}, func(ctx context.Context, req any) (any, error) {
		served = true
		return ok(ctx, req)
	})
	if resp != nil || status.Code(err) != codes.Internal || !strings.HasPrefix(status.Convert(err).Message(), "KMSInternalException: ") {
		t.Fatalf("unaudited request answered %v, %v; want KMSInternalException", resp, err)
	}
	if !served {
		t.Fatal("handler did not run")
	}
}

// A server whose interceptor chain lacks AuditInterceptor serves no client
// request; node-to-node requests need no audit note.
func TestClientRequestWithoutAuditNoteIsRefused(t *testing.T) {
	h := newAuditHarness(t)
	called := false
	handler := func(ctx context.Context, req any) (any, error) { called = true; return ok(ctx, req) }
	_, err := h.s.UnaryInterceptor()(context.Background(), &kmspb.EncryptRequest{}, &grpc.UnaryServerInfo{FullMethod: encryptMethod}, handler)
	if status.Code(err) != codes.Internal || called {
		t.Fatalf("err %v, handler called %v; want Internal before the handler", err, called)
	}
	if _, err := h.s.UnaryInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: internalMethodPrefix + "ReadIndex"}, handler); err != nil || !called {
		t.Fatalf("internal request: err %v, handler called %v", err, called)
	}
}

func TestInternalRequestsAreNotAudited(t *testing.T) {
	h := newAuditHarness(t)
	for _, m := range []string{"Apply", "ReadIndex", "Join", "NodeInfo"} {
		if _, err := h.call(internalMethodPrefix+m, nil, ok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.call("/trent.kms.v1.Cluster/Status", &kmspb.ClusterStatusRequest{}, ok); err != nil {
		t.Fatal(err)
	}
	if recs := h.records(t); len(recs) != 1 || recs[0].Operation != "Status" {
		t.Fatalf("records = %+v; want only Cluster.Status", recs)
	}
}

func TestGrantIsRecorded(t *testing.T) {
	h := newAuditHarness(t)
	_, err := h.call(encryptMethod, &kmspb.EncryptRequest{}, func(ctx context.Context, req any) (any, error) {
		noteGrant(ctx, "grant-42")
		return ok(ctx, req)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.only(t); r.GrantID != "grant-42" {
		t.Errorf("grant id %q", r.GrantID)
	}
}

// A context larger than any request may carry is refused by the handler;
// its record leaves it out rather than exceed the log's line limit.
func TestOversizedContextIsLeftOutOfTheRecord(t *testing.T) {
	h := newAuditHarness(t)
	huge := map[string]string{"k": strings.Repeat("x", 2<<20)}
	_, err := h.call(encryptMethod, &kmspb.EncryptRequest{EncryptionContext: huge}, func(context.Context, any) (any, error) {
		return nil, invalid("EncryptionContext", "too large")
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v; want the handler's ValidationException", err)
	}
	if r := h.only(t); r.EncryptionContext != nil || r.ErrorCode != "ValidationException" {
		t.Errorf("record = %+v", r)
	}
}

func TestNoteHelpersOutsideAnAuditedRequestDoNothing(t *testing.T) {
	ctx := context.Background()
	noteKey(ctx, "k")
	noteResolved(ctx, "alias/a", "k")
	noteVersion(ctx, "k", []byte{1})
	noteGrant(ctx, "g")
}

func TestRequestIDsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := newRequestID()
		if _, err := hex.DecodeString(id); err != nil || len(id) != 16 || seen[id] {
			t.Fatalf("request id %q: bad or repeated", id)
		}
		seen[id] = true
	}
}

// The note costs four allocations per request: the note (which is also the
// request's context), the request id, the source address and the version.
// Encoding the record is audit.Append's cost.
func TestAuditNoteAllocations(t *testing.T) {
	h := newAuditHarness(t)
	ctx := peer.NewContext(context.Background(), testPeer)
	req := &kmspb.EncryptRequest{EncryptionContext: map[string]string{"tenant": "t1"}}
	version := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	allocs := testing.AllocsPerRun(1000, func() {
		n := h.s.newAuditNote(ctx, encryptMethod)
		noteResolved(n, "", "key-1")
		noteKey(n, "key-1")
		noteVersion(n, "key-1", version)
		n.rec.KeyVersion = hexString(n.lookup("key-1").version)
		n.rec.EncryptionContext = auditContext(req)
		n.rec.Outcome, n.rec.ErrorCode = auditOutcome(nil)
	})
	if allocs > 4 {
		t.Errorf("%.0f allocations per request for the audit note; want at most 4", allocs)
	}
}

func TestExceptionNameFallsBackOnTheCode(t *testing.T) {
	if got := exceptionName(status.New(codes.PermissionDenied, "nope")); got != "AccessDeniedException" {
		t.Errorf("got %q", got)
	}
	if got := exceptionName(status.New(codes.InvalidArgument, "NotAnException Really: x")); got != "ValidationException" {
		t.Errorf("got %q", got)
	}
}

func TestAddrStringMatchesNetAddrString(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 7420}, // 16-byte form, as accepted sockets give
		&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 443, Zone: "eth0"},
		&net.UnixAddr{Name: "/run/trent.sock", Net: "unix"},
	} {
		if got, want := addrString(a), a.String(); got != want {
			t.Errorf("addrString(%v) = %q, want %q", a, got, want)
		}
	}
}

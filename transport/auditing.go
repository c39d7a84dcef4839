package transport

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/internalpb"
)

// Auditing: every client request, allowed or denied, becomes exactly one
// record in the node's audit log, appended (and made durable) before the
// answer leaves the node. AuditInterceptor opens a note for the request; the
// code that already knows a fact writes it down through the note* helpers
// (authorize: the key; resolveKey: the key named and the alias; seal/open:
// the key version; CreateKey and rotation: the new key and version; the
// alias commands: their alias); the interceptor adds the caller, the
// encryption context from the request message and the outcome, and appends
// the record.
//
// A record describes one key, the key the request acted on: the first key
// authorized or opened (for ReEncrypt the source key, whose ciphertext was
// opened), else the first key the request named. Its alias and version are
// those noted for that key.

// internalMethodPrefix starts the methods of the node-to-node service. They
// are not client requests: a forwarded write is audited on the node the
// client called.
var internalMethodPrefix = "/" + internalpb.Internal_ServiceDesc.ServiceName + "/"

// replicationMethodPrefix starts the methods of the region-to-region
// service: not client requests either; what they change is recorded as
// management events in replicated state.
var replicationMethodPrefix = "/" + replpb.Replication_ServiceDesc.ServiceName + "/"

// isNodeMethod reports whether fullMethod is called by nodes, not clients.
func isNodeMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, internalMethodPrefix) || strings.HasPrefix(fullMethod, replicationMethodPrefix)
}

// Prefixes of the encryption-context keys in a ReEncrypt record, which holds
// both contexts in the record's one map: "source:K" is key K of
// SourceEncryptionContext, "destination:K" key K of
// DestinationEncryptionContext.
const (
	auditSourceContextPrefix      = "source:"
	auditDestinationContextPrefix = "destination:"
)

// auditNote is what is known about one request so far. It is also the
// request's context (it embeds the parent and answers auditNoteKey with
// itself): one allocation per request instead of a note plus a
// context.WithValue node.
//
// A note is used by the goroutine serving its request only.
type auditNote struct {
	context.Context
	rec  audit.Record
	keys [2]keyFacts // what was learned per key; ReEncrypt touches two
}

// keyFacts are the audit facts about one key a request touched. id is
// empty for an alias that names no key.
type keyFacts struct {
	used    bool
	id      string
	alias   string
	version []byte // hex-encoded only if this key ends up in the record
}

type auditNoteKey struct{}

func (n *auditNote) Value(key any) any {
	if key == (auditNoteKey{}) {
		return n
	}
	return n.Context.Value(key)
}

// noteFrom returns the request's note, or nil outside an audited request
// (internal RPCs, leader work); every note* helper is a no-op then.
func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditNoteKey{}).(*auditNote)
	return n
}

// facts returns the facts of key id, taking a free slot if id is new; nil
// when every slot holds another key. Slots fill in order, so a key's slot
// comes before any free one.
func (n *auditNote) facts(id string) *keyFacts {
	for i := range n.keys {
		if k := &n.keys[i]; !k.used || k.id == id {
			k.used, k.id = true, id
			return k
		}
	}
	return nil
}

// lookup returns the facts of key id, or nil.
func (n *auditNote) lookup(id string) *keyFacts {
	for i := range n.keys {
		if k := &n.keys[i]; k.used && k.id == id {
			return k
		}
	}
	return nil
}

// noteKey records the key the request acts on (a bare key id, not an ARN).
// The first one wins: for ReEncrypt that is the source key, opened before
// the destination key is used.
func noteKey(ctx context.Context, keyID string) {
	if n := noteFrom(ctx); n != nil && keyID != "" && n.rec.KeyID == "" {
		n.rec.KeyID = keyID
	}
}

// noteResolved records that the request named key keyID, through alias
// when it is not empty. keyID is empty for an alias that does not exist.
// For one key the last alias wins: ReEncrypt resolves its source (the key
// the record describes) after its destination, and the alias commands note
// the alias they manage after resolving its target.
func noteResolved(ctx context.Context, alias, keyID string) {
	n := noteFrom(ctx)
	if n == nil {
		return
	}
	if k := n.facts(keyID); k != nil && alias != "" {
		k.alias = alias
	}
}

// noteVersion records the key version (material id) used with a key. The
// first one wins: ReEncrypt opens the source version before sealing under
// the destination, which may be the same key.
func noteVersion(ctx context.Context, keyID string, versionID []byte) {
	n := noteFrom(ctx)
	if n == nil {
		return
	}
	if k := n.facts(keyID); k != nil && k.version == nil {
		k.version = versionID
	}
}

// noteGrant records the grant that allowed the request. authorize calls it
// once grants take part in decisions.
func noteGrant(ctx context.Context, grantID string) {
	if n := noteFrom(ctx); n != nil {
		n.rec.GrantID = grantID
	}
}

// AuditInterceptor audits every client request: it opens the request's
// note, runs the rest of the chain, and appends the record before the answer
// is returned; Append returns once the record is durable. A request whose
// record cannot be appended fails, so no request succeeds unaudited. Chain it
// first, so that requests refused by later interceptors (AuthInterceptor)
// are audited too; UnaryInterceptor refuses client requests it did not see.
func (s *Server) AuditInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if isNodeMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		n := s.newAuditNote(ctx, info.FullMethod)
		resp, err := handler(n, req)
		err = statusFor(err) // already a status unless an interceptor returned a plain error
		if aerr := s.appendAudit(n, req, err); aerr != nil {
			s.log.Error("audit append failed; failing the request", "method", info.FullMethod, "request_id", n.rec.RequestID, "err", aerr)
			return nil, errNotAudited
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

var errNotAudited = status.Error(codes.Internal, "KMSInternalException: the request could not be audited")

// requireAudited refuses a client request that AuditInterceptor did not
// see (a server built without it): no request may succeed unaudited. It also
// notes the caller, whose identity the interceptors before it have read.
func (s *Server) requireAudited(ctx context.Context, fullMethod string) error {
	if isNodeMethod(fullMethod) {
		return nil
	}
	n := noteFrom(ctx)
	if n == nil {
		s.log.Error("client request not audited: AuditInterceptor is not in the interceptor chain; refusing it", "method", fullMethod)
		return errNotAudited
	}
	n.rec.Principal = callerFrom(ctx).Principal
	return nil
}

func (s *Server) newAuditNote(ctx context.Context, fullMethod string) *auditNote {
	n := &auditNote{Context: ctx}
	n.rec.Time = time.Now()
	n.rec.Node = s.cfg.NodeID
	n.rec.Region = s.region()
	n.rec.Operation = fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	n.rec.RequestID = newRequestID()
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		n.rec.SourceAddr = addrString(p.Addr)
	}
	return n
}

// appendAudit completes the note with what the request asked (its
// encryption context) and how it ended (err is the status the caller gets),
// and appends it. The record is encoded before Append returns, so it may
// share the request's maps.
func (s *Server) appendAudit(n *auditNote, req any, err error) error {
	rec := &n.rec
	if rec.Principal == "" {
		rec.Principal = callerFrom(n).Principal // refused before requireAudited ran
	}
	if rec.KeyID == "" && n.keys[0].used {
		rec.KeyID = n.keys[0].id // failed before authorizing or opening: the key it named
	}
	if k := n.lookup(rec.KeyID); k != nil {
		rec.Alias = k.alias
		rec.KeyVersion = hexString(k.version)
	}
	rec.EncryptionContext = auditContext(req)
	rec.Outcome, rec.ErrorCode = auditOutcome(err)
	// Not the request's context: Append refuses a done context, and the
	// request of a caller that gave up (cancelled, past its deadline) is
	// audited too. A disk that hangs holds the request until it answers.
	return s.audit.Append(context.Background(), *rec)
}

// auditContext returns the encryption context a request carries, as the
// caller sent it. A context past the size any request may carry was
// refused (ValidationException) and is left out: the record must stay
// within the audit log's line limit.
func auditContext(req any) map[string]string {
	switch r := req.(type) {
	case interface {
		GetSourceEncryptionContext() map[string]string
		GetDestinationEncryptionContext() map[string]string
	}:
		src, dst := r.GetSourceEncryptionContext(), r.GetDestinationEncryptionContext()
		if len(src)+len(dst) == 0 || !auditableContext(src) || !auditableContext(dst) {
			return nil
		}
		ec := make(map[string]string, len(src)+len(dst))
		for k, v := range src {
			ec[auditSourceContextPrefix+k] = v
		}
		for k, v := range dst {
			ec[auditDestinationContextPrefix+k] = v
		}
		return ec
	case interface{ GetEncryptionContext() map[string]string }:
		if ec := r.GetEncryptionContext(); auditableContext(ec) {
			return ec
		}
	}
	return nil
}

func auditableContext(ec map[string]string) bool {
	size := 0
	for k, v := range ec {
		size += len(k) + len(v)
	}
	return size <= crypto.MaxContextSize
}

// auditOutcome classifies the status a request ended with; the error code
// is the AWS exception name statusFor put at the start of its message.
func auditOutcome(err error) (outcome, errorCode string) {
	if err == nil {
		return audit.OutcomeAllowed, ""
	}
	st := status.Convert(err)
	errorCode = exceptionName(st)
	if c := st.Code(); c == codes.PermissionDenied || c == codes.Unauthenticated {
		return audit.OutcomeDenied, errorCode
	}
	return audit.OutcomeError, errorCode
}

// exceptionName reads the exception name from a status message
// ("NotFoundException: ..."). A status without one (for instance from a
// peer that could not be reached) gets the name its code stands for.
func exceptionName(st *status.Status) string {
	if name, _, ok := strings.Cut(st.Message(), ": "); ok && strings.HasSuffix(name, "Exception") && !strings.ContainsAny(name, " \t") {
		return name
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		return "AccessDeniedException"
	case codes.InvalidArgument:
		return "ValidationException"
	case codes.NotFound:
		return "NotFoundException"
	case codes.DeadlineExceeded:
		return "DependencyTimeoutException"
	}
	return "KMSInternalException"
}

// newRequestID returns 16 random hex digits. Request ids need to be
// unique, not secret: math/rand/v2's generator is seeded from the OS,
// lock-free and makes no system call.
func newRequestID() string {
	var raw [8]byte
	x := rand.Uint64()
	for i := range raw {
		raw[i] = byte(x >> (8 * i))
	}
	return hexString(raw[:])
}

// addrString is a.String() with one allocation instead of three for TCP
// addresses, the address of every request.
func addrString(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ap := t.AddrPort()
	var buf [64]byte
	return string(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(buf[:0]))
}

// hexString is hex.EncodeToString with one allocation (the string) for the
// short ids of the request path.
func hexString(b []byte) string {
	var buf [32]byte
	if len(b) > len(buf)/2 {
		return hex.EncodeToString(b)
	}
	n := hex.Encode(buf[:], b)
	return string(buf[:n])
}

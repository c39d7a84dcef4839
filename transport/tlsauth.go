package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
	"github.com/trent-kms/trent/transport/policy"
)

// Every connection is mutual TLS 1.3 (pki.Reloader's configs decide who may
// connect at all); AuthInterceptor then decides which certificate may call
// which service:
//
//	Internal  node certificates of members of this node's region; Join also
//	          takes a node certificate of the region that is not a member yet
//	          (see joinRefusal), so a removed node is locked out
//	KMS       principal (client) certificates; a node certificate is refused
//	Cluster   principal certificates with role admin
//	Replication  node certificates of other regions (multi-region keys)
//
// Anything else is refused.

// ServerCredentials are the gRPC server's mutual-TLS credentials. Handshake
// failures that crypto/tls decides before pki's callbacks (plaintext, no or
// untrusted or expired client certificate) are logged here with the remote
// address; pki logs the refusals it decides itself.
func ServerCredentials(r *pki.Reloader, logger *slog.Logger) credentials.TransportCredentials {
	return &loggedHandshakes{TransportCredentials: credentials.NewTLS(r.ServerConfig()), log: logger}
}

type loggedHandshakes struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (c *loggedHandshakes) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil && !errors.Is(err, pki.ErrPeerRefused) && !errors.Is(err, pki.ErrNoIdentity) {
		c.log.Warn("tls: connection refused", "remote", raw.RemoteAddr().String(), "reason", err)
	}
	if tlsInfo, ok := info.(credentials.TLSInfo); ok && err == nil {
		// A connection's certificate is fixed by its handshake: read the identity once here,
		// not on every request (parsing it cost 5% of a node's CPU under Encrypt load).
		id, idErr := pki.PeerIdentity(tlsInfo.State)
		return conn, identifiedTLS{TLSInfo: tlsInfo, id: id, idErr: idErr}, nil
	}
	return conn, info, err
}

// identifiedTLS is a connection's TLS information with the identity its
// verified certificate carries, or why it carries none.
type identifiedTLS struct {
	credentials.TLSInfo
	id    pki.Identity
	idErr error
}

func (c *loggedHandshakes) Clone() credentials.TransportCredentials {
	return &loggedHandshakes{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}

// PeerDialer connects to other nodes over mutual TLS, accepting only a node
// certificate of region that names the host dialled.
func PeerDialer(r *pki.Reloader, region string) PeerDialFunc {
	return func(addr string) (*grpc.ClientConn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("peer address %q: %w", addr, err)
		}
		creds := credentials.NewTLS(r.ClientConfig(host, pki.RequireRegion(region)))
		return grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	}
}

// AuthInterceptor refuses a request whose client certificate may not call
// its service (see the table above) with PermissionDenied, and logs the
// refusal. It runs before UnaryInterceptor.
func (s *Server) AuthInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := s.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// AuthStreamInterceptor applies the same rules to streaming calls, so a
// streaming method added later is not left open.
func (s *Server) AuthStreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if _, err := s.authenticate(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// authenticate returns ctx carrying the caller's identity, or the status
// refusing the call.
func (s *Server) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	id, err := peerIdentity(ctx)
	if err != nil {
		s.logRefusal(ctx, fullMethod, "", err.Error())
		return nil, status.Error(codes.Unauthenticated, "AccessDeniedException: no verified client certificate identity")
	}
	if reason := s.refusal(id, fullMethod); reason != "" {
		s.logRefusal(ctx, fullMethod, id.String(), reason)
		return nil, status.Error(codes.PermissionDenied, "AccessDeniedException: "+reason)
	}
	return withPeerIdentity(ctx, id), nil
}

// refusal says why id may not call fullMethod, or "" if it may.
func (s *Server) refusal(id pki.Identity, fullMethod string) string {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch service {
	case internalpb.Internal_ServiceDesc.ServiceName:
		if id.Kind != pki.KindNode || id.Region != s.cfg.Region {
			return fmt.Sprintf("%s may not call the node-to-node Internal service: it takes node certificates of region %q", id, s.cfg.Region)
		}
		if _, member := s.fsm.Node(id.NodeID); !member && method != "Join" {
			return fmt.Sprintf("%s is not a member of region %q: of the Internal service it may only call Join", id, s.cfg.Region)
		}
	case replpb.Replication_ServiceDesc.ServiceName:
		if id.Kind != pki.KindNode || id.Region == s.cfg.Region {
			return fmt.Sprintf("%s may not call the region-to-region Replication service: it takes node certificates of other regions than %q", id, s.cfg.Region)
		}
	case kmspb.KMS_ServiceDesc.ServiceName, kmspb.Cluster_ServiceDesc.ServiceName:
		if id.Kind != pki.KindPrincipal {
			return fmt.Sprintf("%s is a node certificate; the %s service takes client certificates (kmsctl ca issue-client)", id, service)
		}
		if service == kmspb.Cluster_ServiceDesc.ServiceName && !id.HasRole(policy.AdminRole) {
			return fmt.Sprintf("%s may not call Cluster.%s: it needs role %q", id, method, policy.AdminRole)
		}
	default:
		return fmt.Sprintf("%s: unknown service", fullMethod)
	}
	return ""
}

// joinRefusal says why the caller may not ask to admit node nodeID, or ""
// if it may: a node joins under the id its certificate names, and a member
// may pass on another node's request to the leader.
func (s *Server) joinRefusal(ctx context.Context, nodeID string) string {
	caller, err := peerIdentity(ctx)
	if err != nil {
		return err.Error()
	}
	if caller.Kind == pki.KindNode && caller.NodeID == nodeID {
		return ""
	}
	if _, member := s.fsm.Node(caller.NodeID); member && caller.Kind == pki.KindNode {
		return ""
	}
	return fmt.Sprintf("%s may not join as node %q: a node joins under the id its certificate names", caller, nodeID)
}

func (s *Server) logRefusal(ctx context.Context, fullMethod, caller, reason string) {
	s.log.Warn("request refused", "method", fullMethod, "caller", caller, "remote", remoteAddrOf(ctx), "reason", reason)
}

func remoteAddrOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

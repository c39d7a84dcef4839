package transport

import (
	"context"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/trent-kms/trent/transport/pki"
	"github.com/trent-kms/trent/transport/policy"
)

// callerFrom identifies who sent a request: the principal and roles of its
// client certificate. A node (Internal service) is named by its certificate
// URI, which no policy principal can spell by accident. A request without a
// verified certificate identity has the empty Caller, which no policy or
// grant matches; the authentication interceptor refuses such requests before
// any handler runs.
func callerFrom(ctx context.Context) policy.Caller {
	id, err := peerIdentity(ctx)
	if err != nil {
		return policy.Caller{}
	}
	if id.Kind == pki.KindNode {
		return policy.Caller{Principal: id.String()}
	}
	return policy.Caller{Principal: id.Principal, Roles: id.Roles}
}

type identityKey struct{}

// withPeerIdentity remembers the identity the authentication interceptor
// read, so handlers do not parse the certificate again.
func withPeerIdentity(ctx context.Context, id pki.Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// peerIdentity is the identity of the request's verified client
// certificate. This and callerFrom are the only places a request's identity
// is read.
func peerIdentity(ctx context.Context) (pki.Identity, error) {
	if id, ok := ctx.Value(identityKey{}).(pki.Identity); ok {
		return id, nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, fmt.Errorf("%w: no peer on the request", pki.ErrNoIdentity)
	}
	if info, ok := p.AuthInfo.(identifiedTLS); ok {
		return info.id, info.idErr
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, fmt.Errorf("%w: the connection from %s is not TLS", pki.ErrNoIdentity, p.Addr)
	}
	return pki.PeerIdentity(info.State)
}

package fsm

import (
	"bytes"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func (s *state) applyInitRegion(now int64, op *fsmpb.InitRegion) *Result {
	if s.region != nil {
		return reject(ErrAlreadyExists, "region %s is already initialised", s.region.GetName())
	}
	if op.GetName() == "" {
		return reject(ErrInvalidArgument, "InitRegion needs a region name")
	}
	dk := op.GetDomainKey()
	if dk.GetId() == "" {
		return reject(ErrInvalidArgument, "region %s: InitRegion needs a domain key id", op.GetName())
	}
	node := op.GetNode()
	if node.GetId() == "" {
		return reject(ErrInvalidArgument, "region %s: InitRegion needs the bootstrapping node's id", op.GetName())
	}
	dk.CreationTimeUnixNano = now
	s.region = &fsmpb.Region{Name: op.GetName(), ActiveDomainKeyId: dk.GetId()}
	s.domainKeys = []*fsmpb.DomainKey{dk}
	s.nodes.put(node.GetId(), node)
	return &Result{}
}

func (s *state) applyAddDomainKey(now int64, op *fsmpb.AddDomainKey) *Result {
	if s.region == nil {
		return reject(ErrInvalidState, "region is not initialised; AddDomainKey needs InitRegion first")
	}
	dk := op.GetDomainKey()
	if dk.GetId() == "" {
		return reject(ErrInvalidArgument, "region %s: AddDomainKey needs a domain key id", s.region.GetName())
	}
	if s.hasDomainKey(dk.GetId()) {
		return reject(ErrAlreadyExists, "region %s already has domain key %s", s.region.GetName(), dk.GetId())
	}
	dk.CreationTimeUnixNano = now
	s.domainKeys = append(s.domainKeys, dk)
	if op.GetMakeActive() {
		region := proto.Clone(s.region).(*fsmpb.Region)
		region.ActiveDomainKeyId = dk.GetId()
		s.region = region
	}
	return &Result{}
}

func (s *state) applyRegisterNode(op *fsmpb.RegisterNode) *Result {
	node := op.GetNode()
	if node.GetId() == "" {
		return reject(ErrInvalidArgument, "RegisterNode needs a node id")
	}
	s.nodes.put(node.GetId(), node)
	return &Result{}
}

func (s *state) applyDeregisterNode(op *fsmpb.DeregisterNode) *Result {
	if op.GetId() == "" {
		return reject(ErrInvalidArgument, "DeregisterNode needs a node id")
	}
	s.nodes.remove(op.GetId())
	return &Result{}
}

func (s *state) hasDomainKey(id string) bool {
	return id != "" && slices.ContainsFunc(s.domainKeys, func(dk *fsmpb.DomainKey) bool { return dk.GetId() == id })
}

// applySetRegionSigningKey stores the region's cross-region signing key. The
// first one applied wins: two leaders in turn may each have made one, and
// every node must keep the same.
func (s *state) applySetRegionSigningKey(op *fsmpb.SetRegionSigningKey) *Result {
	if s.region == nil {
		return reject(ErrInvalidState, "SetRegionSigningKey: region is not initialised")
	}
	if len(s.region.GetSigningKeyToken()) > 0 {
		return &Result{}
	}
	switch {
	case len(op.GetToken()) == 0:
		return reject(ErrInvalidArgument, "SetRegionSigningKey needs a key token")
	case len(op.GetPublicKey()) == 0:
		return reject(ErrInvalidArgument, "SetRegionSigningKey needs a public key")
	case !s.hasDomainKey(op.GetDomainKeyId()):
		return reject(ErrInvalidArgument, "SetRegionSigningKey: the token is wrapped under unknown domain key %q", op.GetDomainKeyId())
	}
	region := proto.Clone(s.region).(*fsmpb.Region)
	region.SigningKeyToken = op.GetToken()
	region.SigningDomainKeyId = op.GetDomainKeyId()
	region.SigningPublicKey = op.GetPublicKey()
	s.region = region
	return &Result{}
}

// maxPeerRegions bounds the pinned signing keys a region keeps.
const maxPeerRegions = 64

// applyPinPeerRegion records another region's signing public key on first
// use. A region's signing key never changes, so another key for a pinned
// region means a forged message or a rebuilt region, which an operator must
// look at.
func (s *state) applyPinPeerRegion(op *fsmpb.PinPeerRegion) *Result {
	name, key := op.GetRegion(), op.GetPublicKey()
	switch {
	case s.region == nil:
		return reject(ErrInvalidState, "PinPeerRegion: region is not initialised")
	case name == "":
		return reject(ErrInvalidArgument, "PinPeerRegion needs a region")
	case name == s.regionName():
		return reject(ErrInvalidArgument, "PinPeerRegion: %s is this region", name)
	case len(key) == 0:
		return reject(ErrInvalidArgument, "PinPeerRegion: region %s: no public key", name)
	}
	if pinned, ok := s.region.GetPeerSigningKeys()[name]; ok {
		if bytes.Equal(pinned, key) {
			return &Result{}
		}
		return reject(ErrInvalidState, "region %s is pinned to another signing key", name)
	}
	if n := len(s.region.GetPeerSigningKeys()); n >= maxPeerRegions {
		return reject(ErrLimitExceeded, "PinPeerRegion: %d regions are pinned; the limit is %d", n, maxPeerRegions)
	}
	region := proto.Clone(s.region).(*fsmpb.Region)
	if region.PeerSigningKeys == nil {
		region.PeerSigningKeys = make(map[string][]byte)
	}
	region.PeerSigningKeys[name] = key
	s.region = region
	return &Result{}
}

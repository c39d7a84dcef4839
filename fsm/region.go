package fsm

import (
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

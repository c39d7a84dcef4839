package transport

import (
	"context"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/transport/kmspb"
)

func (s *Server) Encrypt(ctx context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	if err := crypto.ValidPlaintextSize(len(req.GetPlaintext())); err != nil {
		return nil, invalid("Plaintext", "%v", err)
	}
	if err := validateContext("EncryptionContext", req.GetEncryptionContext()); err != nil {
		return nil, err
	}
	if err := validateAlgorithm("EncryptionAlgorithm", req.GetEncryptionAlgorithm()); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	k, alias, err := s.resolveKeyVia(ctx, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, access{action: actionEncrypt, key: k, alias: alias, ec: req.GetEncryptionContext(), tokens: req.GetGrantTokens()}); err != nil {
		return nil, err
	}
	if err := usableForCrypto(k); err != nil {
		return nil, err
	}
	blob, err := s.seal(ctx, k, req.GetPlaintext(), req.GetEncryptionContext())
	if err != nil {
		return nil, err
	}
	return &kmspb.EncryptResponse{
		CiphertextBlob:      blob,
		KeyId:               keyARN(s.region(), k.GetKeyId()),
		EncryptionAlgorithm: crypto.EncryptionAlgorithmSymmetricDefault,
	}, nil
}

func (s *Server) Decrypt(ctx context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	if err := validateContext("EncryptionContext", req.GetEncryptionContext()); err != nil {
		return nil, err
	}
	if err := validateAlgorithm("EncryptionAlgorithm", req.GetEncryptionAlgorithm()); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	o, err := s.open(ctx, req.GetCiphertextBlob(), req.GetEncryptionContext(), req.GetKeyId(), "KeyId",
		access{action: actionDecrypt, tokens: req.GetGrantTokens()})
	if err != nil {
		return nil, err
	}
	return &kmspb.DecryptResponse{
		KeyId:               keyARN(s.region(), o.key.GetKeyId()),
		Plaintext:           o.plaintext.Bytes(),
		EncryptionAlgorithm: crypto.EncryptionAlgorithmSymmetricDefault,
		KeyMaterialId:       materialID(o.version),
	}, nil
}

func (s *Server) ReEncrypt(ctx context.Context, req *kmspb.ReEncryptRequest) (*kmspb.ReEncryptResponse, error) {
	if err := requireKeyRef("DestinationKeyId", req.GetDestinationKeyId()); err != nil {
		return nil, err
	}
	if err := validateContext("SourceEncryptionContext", req.GetSourceEncryptionContext()); err != nil {
		return nil, err
	}
	if err := validateContext("DestinationEncryptionContext", req.GetDestinationEncryptionContext()); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	dst, dstAlias, err := s.resolveKeyVia(ctx, "DestinationKeyId", req.GetDestinationKeyId())
	if err != nil {
		return nil, err
	}
	// Both keys are authorized before anything is decrypted; the source
	// first, so the audit record describes it.
	src, err := s.locate(ctx, req.GetCiphertextBlob(), req.GetSourceEncryptionContext(), req.GetSourceKeyId(), "SourceKeyId",
		access{action: actionReEncryptFrom, tokens: req.GetGrantTokens()})
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, access{action: actionReEncryptTo, key: dst, alias: dstAlias,
		ec: req.GetDestinationEncryptionContext(), tokens: req.GetGrantTokens()}); err != nil {
		return nil, err
	}
	if err := usableForCrypto(dst); err != nil {
		return nil, err
	}
	o, err := s.decrypt(ctx, src, req.GetSourceEncryptionContext())
	if err != nil {
		return nil, err
	}
	defer o.plaintext.Zero()
	blob, err := s.seal(ctx, dst, o.plaintext.Bytes(), req.GetDestinationEncryptionContext())
	if err != nil {
		return nil, err
	}
	return &kmspb.ReEncryptResponse{
		CiphertextBlob:                 blob,
		SourceKeyId:                    keyARN(s.region(), o.key.GetKeyId()),
		KeyId:                          keyARN(s.region(), dst.GetKeyId()),
		SourceEncryptionAlgorithm:      crypto.EncryptionAlgorithmSymmetricDefault,
		DestinationEncryptionAlgorithm: crypto.EncryptionAlgorithmSymmetricDefault,
	}, nil
}

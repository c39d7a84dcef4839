package transport

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// dataKeySize reads the two ways AWS KMS lets a caller size a data key:
// exactly one of KeySpec and NumberOfBytes.
func dataKeySize(keySpec string, numberOfBytes int32) (int, error) {
	switch {
	case keySpec != "" && numberOfBytes != 0:
		return 0, invalid("KeySpec", "give KeySpec or NumberOfBytes, not both")
	case keySpec != "":
		n, err := crypto.DataKeySize(keySpec)
		if err != nil {
			return 0, invalid("KeySpec", "%v", err)
		}
		return n, nil
	case numberOfBytes != 0:
		if err := crypto.ValidDataKeyBytes(int(numberOfBytes)); err != nil {
			return 0, invalid("NumberOfBytes", "%v", err)
		}
		return int(numberOfBytes), nil
	}
	return 0, invalid("KeySpec", "KeySpec or NumberOfBytes is required")
}

// newDataKey draws a data key and encrypts it under the key named by keyRef.
func (s *Server) newDataKey(ctx context.Context, action, keyRef string, ec map[string]string, tokens []string, size int) (*fsmpb.Key, *crypto.Secret, []byte, error) {
	if err := validateContext("EncryptionContext", ec); err != nil {
		return nil, nil, nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, nil, nil, err
	}
	k, alias, err := s.resolveKeyVia(ctx, "KeyId", keyRef)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.authorize(ctx, access{action: action, key: k, alias: alias, ec: ec, tokens: tokens}); err != nil {
		return nil, nil, nil, err
	}
	if err := usableForCrypto(k); err != nil {
		return nil, nil, nil, err
	}
	plaintext, err := s.random(ctx, k.GetProtectionLevel(), size)
	if err != nil {
		return nil, nil, nil, err
	}
	dataKey := crypto.NewSecret(plaintext)
	blob, err := s.seal(ctx, k, dataKey.Bytes(), ec)
	if err != nil {
		dataKey.Zero()
		return nil, nil, nil, err
	}
	return k, dataKey, blob, nil
}

// random draws n bytes: from the HSM for HSM-level keys, from the operating
// system otherwise (SOFTWARE keys never touch the HSM per request).
func (s *Server) random(ctx context.Context, protection string, n int) ([]byte, error) {
	if protection == protectionHSM {
		b, err := s.hsm.GenerateRandom(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("random from HSM: %w", err)
		}
		return b, nil
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Server) GenerateDataKey(ctx context.Context, req *kmspb.GenerateDataKeyRequest) (*kmspb.GenerateDataKeyResponse, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	size, err := dataKeySize(req.GetKeySpec(), req.GetNumberOfBytes())
	if err != nil {
		return nil, err
	}
	k, dataKey, blob, err := s.newDataKey(ctx, actionGenerateDataKey, req.GetKeyId(), req.GetEncryptionContext(), req.GetGrantTokens(), size)
	if err != nil {
		return nil, err
	}
	return &kmspb.GenerateDataKeyResponse{
		CiphertextBlob: blob,
		Plaintext:      dataKey.Bytes(),
		KeyId:          keyARN(s.region(), k.GetKeyId()),
	}, nil
}

func (s *Server) GenerateDataKeyWithoutPlaintext(ctx context.Context, req *kmspb.GenerateDataKeyWithoutPlaintextRequest) (*kmspb.GenerateDataKeyWithoutPlaintextResponse, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	size, err := dataKeySize(req.GetKeySpec(), req.GetNumberOfBytes())
	if err != nil {
		return nil, err
	}
	k, dataKey, blob, err := s.newDataKey(ctx, actionGenerateDataKeyNoPT, req.GetKeyId(), req.GetEncryptionContext(), req.GetGrantTokens(), size)
	if err != nil {
		return nil, err
	}
	dataKey.Zero()
	return &kmspb.GenerateDataKeyWithoutPlaintextResponse{
		CiphertextBlob: blob,
		KeyId:          keyARN(s.region(), k.GetKeyId()),
	}, nil
}

func (s *Server) GenerateRandom(ctx context.Context, req *kmspb.GenerateRandomRequest) (*kmspb.GenerateRandomResponse, error) {
	if err := crypto.ValidRandomBytes(int(req.GetNumberOfBytes())); err != nil {
		return nil, invalid("NumberOfBytes", "%v", err)
	}
	if err := s.authorize(ctx, access{action: actionGenerateRandom}); err != nil {
		return nil, err
	}
	b, err := s.hsm.GenerateRandom(ctx, int(req.GetNumberOfBytes()))
	if err != nil {
		return nil, fmt.Errorf("random from HSM: %w", err)
	}
	return &kmspb.GenerateRandomResponse{Plaintext: b}, nil
}

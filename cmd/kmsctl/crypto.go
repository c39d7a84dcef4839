package main

import "github.com/trent-kms/trent/transport/kmspb"

func contextFlag(name string) flagSpec {
	return flagSpec{name: name, kind: kindContext, metavar: "CONTEXT", usage: `k=v,k2=v2 or JSON {"k":"v"}; must match at decryption`}
}

var (
	algorithmFlag = flagSpec{name: "encryption-algorithm", kind: kindString, metavar: "ALGORITHM", usage: "SYMMETRIC_DEFAULT (default)"}

	// dataKeyFlags are shared by both generate-data-key commands.
	dataKeyFlags = []flagSpec{keyIDFlag,
		{name: "key-spec", kind: kindString, metavar: "AES_256|AES_128", usage: "length of the data key; or give --number-of-bytes"},
		{name: "number-of-bytes", kind: kindInt, metavar: "N", usage: "length of the data key in bytes, 1 to 1024; or give --key-spec"},
		contextFlag("encryption-context"),
		grantTokensFlag,
	}
)

// checkDataKeySize catches the mistake locally: the API wants exactly one
// of the two ways to give the data key's length.
func checkDataKeySize(f flagValues) error {
	switch {
	case f.has("key-spec") && f.has("number-of-bytes"):
		return usagef("give only one of --key-spec and --number-of-bytes")
	case !f.has("key-spec") && !f.has("number-of-bytes"):
		return usagef("give --key-spec AES_256|AES_128 or --number-of-bytes N")
	}
	return nil
}

var cryptoCommands = []*command{
	{
		name: "encrypt", op: "Encrypt",
		summary: "Encrypt a small secret under a key (for bulk data, use generate-data-key).",
		flags: []flagSpec{keyIDFlag,
			{name: "plaintext", kind: kindBlob, required: true, metavar: "BLOB", usage: "fileb://PATH, fileb://- (stdin) or base64 text"},
			contextFlag("encryption-context"),
			algorithmFlag,
			grantTokensFlag,
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.Encrypt(r.ctx, &kmspb.EncryptRequest{
				KeyId:               r.flags.str("key-id"),
				Plaintext:           r.flags.blob("plaintext"),
				EncryptionContext:   r.flags.context("encryption-context"),
				EncryptionAlgorithm: r.flags.str("encryption-algorithm"),
				GrantTokens:         r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return encryptOutput{
				CiphertextBlob:      resp.GetCiphertextBlob(),
				KeyID:               resp.GetKeyId(),
				EncryptionAlgorithm: resp.GetEncryptionAlgorithm(),
			}, nil
		},
	},
	{
		name: "decrypt", op: "Decrypt",
		summary: "Decrypt a ciphertext made by encrypt or generate-data-key.",
		flags: []flagSpec{
			{name: "ciphertext-blob", kind: kindBlob, required: true, metavar: "BLOB", usage: "fileb://PATH, fileb://- (stdin) or base64 text"},
			contextFlag("encryption-context"),
			{name: "key-id", kind: kindString, usage: "fail unless the ciphertext belongs to this key"},
			algorithmFlag,
			grantTokensFlag,
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.Decrypt(r.ctx, &kmspb.DecryptRequest{
				CiphertextBlob:      r.flags.blob("ciphertext-blob"),
				EncryptionContext:   r.flags.context("encryption-context"),
				KeyId:               r.flags.str("key-id"),
				EncryptionAlgorithm: r.flags.str("encryption-algorithm"),
				GrantTokens:         r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return decryptOutput{
				KeyID:               resp.GetKeyId(),
				Plaintext:           resp.GetPlaintext(),
				EncryptionAlgorithm: resp.GetEncryptionAlgorithm(),
				KeyMaterialID:       resp.GetKeyMaterialId(),
			}, nil
		},
	},
	{
		name: "re-encrypt", op: "ReEncrypt",
		summary: "Decrypt and encrypt again under another key or context, without exposing the plaintext.",
		flags: []flagSpec{
			{name: "ciphertext-blob", kind: kindBlob, required: true, metavar: "BLOB", usage: "fileb://PATH, fileb://- (stdin) or base64 text"},
			contextFlag("source-encryption-context"),
			{name: "source-key-id", kind: kindString, metavar: "KEY_ID", usage: "fail unless the ciphertext belongs to this key"},
			{name: "destination-key-id", kind: kindString, required: true, metavar: "KEY_ID", usage: "key to encrypt under"},
			contextFlag("destination-encryption-context"),
			grantTokensFlag,
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.ReEncrypt(r.ctx, &kmspb.ReEncryptRequest{
				CiphertextBlob:               r.flags.blob("ciphertext-blob"),
				SourceEncryptionContext:      r.flags.context("source-encryption-context"),
				SourceKeyId:                  r.flags.str("source-key-id"),
				DestinationKeyId:             r.flags.str("destination-key-id"),
				DestinationEncryptionContext: r.flags.context("destination-encryption-context"),
				GrantTokens:                  r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return reEncryptOutput{
				CiphertextBlob:                 resp.GetCiphertextBlob(),
				SourceKeyID:                    resp.GetSourceKeyId(),
				KeyID:                          resp.GetKeyId(),
				SourceEncryptionAlgorithm:      resp.GetSourceEncryptionAlgorithm(),
				DestinationEncryptionAlgorithm: resp.GetDestinationEncryptionAlgorithm(),
			}, nil
		},
	},
	{
		name: "generate-data-key", op: "GenerateDataKey",
		summary: "Make a data key; return it in plaintext and encrypted under a key.",
		flags:   dataKeyFlags,
		run: func(r *request) (any, error) {
			if err := checkDataKeySize(r.flags); err != nil {
				return nil, err
			}
			resp, err := r.kms.GenerateDataKey(r.ctx, &kmspb.GenerateDataKeyRequest{
				KeyId:             r.flags.str("key-id"),
				KeySpec:           r.flags.str("key-spec"),
				NumberOfBytes:     r.flags.int32("number-of-bytes"),
				EncryptionContext: r.flags.context("encryption-context"),
				GrantTokens:       r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return generateDataKeyOutput{
				CiphertextBlob: resp.GetCiphertextBlob(),
				Plaintext:      resp.GetPlaintext(),
				KeyID:          resp.GetKeyId(),
			}, nil
		},
	},
	{
		name: "generate-data-key-without-plaintext", op: "GenerateDataKeyWithoutPlaintext",
		summary: "Make a data key; return it only encrypted under a key.",
		flags:   dataKeyFlags,
		run: func(r *request) (any, error) {
			if err := checkDataKeySize(r.flags); err != nil {
				return nil, err
			}
			resp, err := r.kms.GenerateDataKeyWithoutPlaintext(r.ctx, &kmspb.GenerateDataKeyWithoutPlaintextRequest{
				KeyId:             r.flags.str("key-id"),
				KeySpec:           r.flags.str("key-spec"),
				NumberOfBytes:     r.flags.int32("number-of-bytes"),
				EncryptionContext: r.flags.context("encryption-context"),
				GrantTokens:       r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return generateDataKeyWithoutPlaintextOutput{
				CiphertextBlob: resp.GetCiphertextBlob(),
				KeyID:          resp.GetKeyId(),
			}, nil
		},
	},
	{
		name: "generate-random", op: "GenerateRandom",
		summary: "Return random bytes from the server's generator.",
		flags: []flagSpec{
			{name: "number-of-bytes", kind: kindInt, required: true, metavar: "N", usage: "how many bytes, 1 to 1024"},
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.GenerateRandom(r.ctx, &kmspb.GenerateRandomRequest{NumberOfBytes: r.flags.int32("number-of-bytes")})
			if err != nil {
				return nil, err
			}
			return generateRandomOutput{Plaintext: resp.GetPlaintext()}, nil
		},
	},
}

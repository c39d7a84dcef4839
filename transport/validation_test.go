package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// regionState is everything a client can observe about keys and aliases,
// for checking that refused requests change nothing.
func regionState(t *testing.T, c kmspb.KMSClient) []byte {
	t.Helper()
	var out []byte
	keys, err := c.ListKeys(ctxT(t), &kmspb.ListKeysRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.GetKeys() {
		for _, m := range []func() (proto.Message, error){
			func() (proto.Message, error) {
				return c.DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: k.GetKeyId()})
			},
			func() (proto.Message, error) {
				return c.ListResourceTags(ctxT(t), &kmspb.ListResourceTagsRequest{KeyId: k.GetKeyId()})
			},
			func() (proto.Message, error) {
				return c.GetKeyRotationStatus(ctxT(t), &kmspb.GetKeyRotationStatusRequest{KeyId: k.GetKeyId()})
			},
			func() (proto.Message, error) {
				return c.ListKeyRotations(ctxT(t), &kmspb.ListKeyRotationsRequest{KeyId: k.GetKeyId()})
			},
		} {
			msg, err := m()
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := msg.(*kmspb.DescribeKeyResponse); ok {
				// Replication lag moves with the clock, and the last error
				// with the replicator's attempts to reach a region that
				// does not exist here, not with the requests.
				for _, r := range d.GetKeyMetadata().GetMultiRegionConfiguration().GetReplicaKeys() {
					r.ReplicationLagMillis = nil
					r.LastError = ""
				}
			}
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
			out = append(out, b...)
		}
	}
	aliases, err := c.ListAliases(ctxT(t), &kmspb.ListAliasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(aliases)
	return append(out, b...)
}

// TestBadInputGetsASpecificErrorAndChangesNothing is the table of refusals
// the README lists: each names the field or the rule, with the AWS exception
// name first in the message.
func TestBadInputGetsASpecificErrorAndChangesNothing(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	key, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{Description: "target"})
	if err != nil {
		t.Fatal(err)
	}
	keyID := key.GetKeyMetadata().GetKeyId()
	disabled, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	disabledID := disabled.GetKeyMetadata().GetKeyId()
	if _, err := c.DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: disabledID}); err != nil {
		t.Fatal(err)
	}
	pending, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pendingID := pending.GetKeyMetadata().GetKeyId()
	if _, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: pendingID, PendingWindowInDays: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/taken", TargetKeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	good, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte("secret"), EncryptionContext: map[string]string{"purpose": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	blob := good.GetCiphertextBlob()
	flipped := append([]byte(nil), blob...)
	flipped[len(flipped)-1] ^= 1
	other, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	otherID := other.GetKeyMetadata().GetKeyId()
	mrkID := createMRK(t, c, "")
	// Never created: no region eu-9 answers in this test.
	if _, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-9"}); err != nil {
		t.Fatal(err)
	}
	lockout := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Trent": "nobody"}, "Action": "kms:*", "Resource": "*"}]}`
	tooMany := make([]*kmspb.Tag, 51)
	for i := range tooMany {
		tooMany[i] = &kmspb.Tag{TagKey: strings.Repeat("k", i+1)}
	}

	before := regionState(t, c)
	cases := []struct {
		name      string
		call      func() error
		code      codes.Code
		exception string
		mentions  string
	}{
		{"unknown key", func() error {
			_, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: "00000000-0000-0000-0000-000000000000"})
			return err
		}, codes.NotFound, "NotFoundException", "does not exist"},
		{"unknown alias", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: "alias/nope", Plaintext: []byte("x")})
			return err
		}, codes.NotFound, "NotFoundException", "alias/nope"},
		{"missing key id", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Plaintext: []byte("x")})
			return err
		}, codes.InvalidArgument, "ValidationException", "KeyId"},
		{"empty plaintext", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyID})
			return err
		}, codes.InvalidArgument, "ValidationException", "Plaintext"},
		{"plaintext over 4096 bytes", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyID, Plaintext: make([]byte, 4097)})
			return err
		}, codes.InvalidArgument, "ValidationException", "4096"},
		{"unknown encryption algorithm", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte("x"), EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
			return err
		}, codes.InvalidArgument, "ValidationException", "EncryptionAlgorithm"},
		{"encrypt with disabled key", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: disabledID, Plaintext: []byte("x")})
			return err
		}, codes.FailedPrecondition, "DisabledException", "disabled"},
		{"encrypt with key pending deletion", func() error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: pendingID, Plaintext: []byte("x")})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", "PendingDeletion"},
		{"enable key pending deletion", func() error {
			_, err := c.EnableKey(ctx, &kmspb.EnableKeyRequest{KeyId: pendingID})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", pendingID},
		{"wrong encryption context", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: blob, EncryptionContext: map[string]string{"purpose": "other"}})
			return err
		}, codes.InvalidArgument, "InvalidCiphertextException", "encryption context"},
		{"missing encryption context", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: blob})
			return err
		}, codes.InvalidArgument, "InvalidCiphertextException", "encryption context"},
		{"tampered ciphertext", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: flipped, EncryptionContext: map[string]string{"purpose": "test"}})
			return err
		}, codes.InvalidArgument, "InvalidCiphertextException", "altered"},
		{"truncated ciphertext", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: blob[:20]})
			return err
		}, codes.InvalidArgument, "InvalidCiphertextException", "past the end"},
		{"foreign ciphertext", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: []byte("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w")})
			return err
		}, codes.InvalidArgument, "InvalidCiphertextException", "ciphertext"},
		{"ciphertext under another key than named", func() error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: blob, KeyId: otherID, EncryptionContext: map[string]string{"purpose": "test"}})
			return err
		}, codes.InvalidArgument, "IncorrectKeyException", otherID},
		{"pending window too short", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: keyID, PendingWindowInDays: 6})
			return err
		}, codes.InvalidArgument, "ValidationException", "PendingWindowInDays"},
		{"pending window too long", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: keyID, PendingWindowInDays: 31})
			return err
		}, codes.InvalidArgument, "ValidationException", "7..30"},
		{"rotation period too short", func() error {
			_, err := c.EnableKeyRotation(ctx, &kmspb.EnableKeyRotationRequest{KeyId: keyID, RotationPeriodInDays: 89})
			return err
		}, codes.InvalidArgument, "ValidationException", "RotationPeriodInDays"},
		{"rotation period too long", func() error {
			_, err := c.EnableKeyRotation(ctx, &kmspb.EnableKeyRotationRequest{KeyId: keyID, RotationPeriodInDays: 2561})
			return err
		}, codes.InvalidArgument, "ValidationException", "90..2560"},
		{"rotation of disabled key", func() error {
			_, err := c.EnableKeyRotation(ctx, &kmspb.EnableKeyRotationRequest{KeyId: disabledID})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", disabledID},
		{"alias without prefix", func() error {
			_, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "mykey", TargetKeyId: keyID})
			return err
		}, codes.InvalidArgument, "ValidationException", "alias/"},
		{"alias with bad characters", func() error {
			_, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/my key!", TargetKeyId: keyID})
			return err
		}, codes.InvalidArgument, "ValidationException", "AliasName"},
		{"reserved alias prefix", func() error {
			_, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/aws/s3", TargetKeyId: keyID})
			return err
		}, codes.InvalidArgument, "ValidationException", "reserved"},
		{"duplicate alias", func() error {
			_, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/taken", TargetKeyId: otherID})
			return err
		}, codes.AlreadyExists, "AlreadyExistsException", "alias/taken"},
		{"alias to key pending deletion", func() error {
			_, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/new", TargetKeyId: pendingID})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", pendingID},
		{"data key size out of range", func() error {
			_, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: keyID, NumberOfBytes: 1025})
			return err
		}, codes.InvalidArgument, "ValidationException", "NumberOfBytes"},
		{"data key spec unknown", func() error {
			_, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: keyID, KeySpec: "AES_512"})
			return err
		}, codes.InvalidArgument, "ValidationException", "KeySpec"},
		{"data key spec and size both", func() error {
			_, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: keyID, KeySpec: "AES_256", NumberOfBytes: 32})
			return err
		}, codes.InvalidArgument, "ValidationException", "not both"},
		{"random size out of range", func() error {
			_, err := c.GenerateRandom(ctx, &kmspb.GenerateRandomRequest{NumberOfBytes: 0})
			return err
		}, codes.InvalidArgument, "ValidationException", "NumberOfBytes"},
		{"too many tags", func() error {
			tags := make([]*kmspb.Tag, 51)
			for i := range tags {
				tags[i] = &kmspb.Tag{TagKey: strings.Repeat("k", i+1)}
			}
			_, err := c.TagResource(ctx, &kmspb.TagResourceRequest{KeyId: keyID, Tags: tags})
			return err
		}, codes.ResourceExhausted, "LimitExceededException", "50"},
		{"reserved tag prefix", func() error {
			_, err := c.TagResource(ctx, &kmspb.TagResourceRequest{KeyId: keyID, Tags: []*kmspb.Tag{{TagKey: "aws:owner"}}})
			return err
		}, codes.InvalidArgument, "ValidationException", "aws:"},
		{"unsupported key spec", func() error {
			_, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{KeySpec: "RSA_2048"})
			return err
		}, codes.Unimplemented, "UnsupportedOperationException", "KeySpec"},
		{"unknown protection level", func() error {
			_, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{ProtectionLevel: "CLOUD"})
			return err
		}, codes.InvalidArgument, "ValidationException", "ProtectionLevel"},
		{"list limit out of range", func() error {
			_, err := c.ListKeys(ctx, &kmspb.ListKeysRequest{Limit: 1001})
			return err
		}, codes.InvalidArgument, "ValidationException", "Limit"},
		{"key ARN of another region", func() error {
			_, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: "arn:trent:kms:elsewhere::key/" + keyID})
			return err
		}, codes.NotFound, "NotFoundException", "elsewhere"},
		{"cancel deletion of a key not pending", func() error {
			_, err := c.CancelKeyDeletion(ctx, &kmspb.CancelKeyDeletionRequest{KeyId: keyID})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", keyID},
		{"replicate without key id", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{ReplicaRegion: "eu-2"})
			return err
		}, codes.InvalidArgument, "ValidationException", "KeyId"},
		{"replicate without replica region", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID})
			return err
		}, codes.InvalidArgument, "ValidationException", "ReplicaRegion: is required"},
		{"replicate to a region name with bad characters", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "EU_2"})
			return err
		}, codes.InvalidArgument, "ValidationException", "ReplicaRegion"},
		{"replicate to a region name over 64 characters", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: strings.Repeat("a", 65)})
			return err
		}, codes.InvalidArgument, "ValidationException", "ReplicaRegion"},
		{"replicate to the primary's own region", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: nodetest.RegionName})
			return err
		}, codes.InvalidArgument, "ValidationException", "ReplicaRegion"},
		{"replicate with a description over 8192 bytes", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Description: strings.Repeat("d", 8193)})
			return err
		}, codes.InvalidArgument, "ValidationException", "Description"},
		{"replicate with a reserved tag prefix", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Tags: []*kmspb.Tag{{TagKey: "aws:x"}}})
			return err
		}, codes.InvalidArgument, "ValidationException", "aws:"},
		{"replicate with a tag twice", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Tags: []*kmspb.Tag{{TagKey: "a"}, {TagKey: "a"}}})
			return err
		}, codes.InvalidArgument, "ValidationException", "twice"},
		{"replicate with too many tags", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Tags: tooMany})
			return err
		}, codes.InvalidArgument, "ValidationException", "Tags"},
		{"replicate with a malformed policy", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Policy: "{"})
			return err
		}, codes.InvalidArgument, "MalformedPolicyDocumentException", "Policy"},
		{"replicate with a policy that locks the caller out", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-2", Policy: lockout})
			return err
		}, codes.InvalidArgument, "MalformedPolicyDocumentException", "PutKeyPolicy"},
		{"replicate a single-region key", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: keyID, ReplicaRegion: "eu-2"})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", "not a multi-region key"},
		{"replicate an unknown key", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: "mrk-00000000000000000000000000000000", ReplicaRegion: "eu-2"})
			return err
		}, codes.NotFound, "NotFoundException", "does not exist"},
		{"replicate to a region twice", func() error {
			_, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: mrkID, ReplicaRegion: "eu-9"})
			return err
		}, codes.AlreadyExists, "AlreadyExistsException", "eu-9"},
		{"update primary without key id", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{PrimaryRegion: "eu-9"})
			return err
		}, codes.InvalidArgument, "ValidationException", "KeyId"},
		{"update primary without region", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID})
			return err
		}, codes.InvalidArgument, "ValidationException", "PrimaryRegion: is required"},
		{"update primary to a region name with bad characters", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID, PrimaryRegion: "eu 9"})
			return err
		}, codes.InvalidArgument, "ValidationException", "PrimaryRegion"},
		{"update primary of a single-region key", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: keyID, PrimaryRegion: "eu-9"})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", "not a multi-region key"},
		{"update primary to the primary", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID, PrimaryRegion: nodetest.RegionName})
			return err
		}, codes.InvalidArgument, "ValidationException", "already the primary"},
		{"update primary to a region without a replica", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID, PrimaryRegion: "us-3"})
			return err
		}, codes.InvalidArgument, "ValidationException", "no replica in us-3"},
		{"update primary to a replica still being created", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID, PrimaryRegion: "eu-9"})
			return err
		}, codes.FailedPrecondition, "KMSInvalidStateException", "CREATING"},
		{"forced update sent to another region than the one promoted", func() error {
			_, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: mrkID, PrimaryRegion: "eu-9", Force: true})
			return err
		}, codes.InvalidArgument, "ValidationException", "PrimaryRegion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tc.code)
			}
			if !strings.HasPrefix(st.Message(), tc.exception+": ") {
				t.Fatalf("message %q does not start with %q", st.Message(), tc.exception)
			}
			if !strings.Contains(st.Message(), tc.mentions) {
				t.Fatalf("message %q does not mention %q", st.Message(), tc.mentions)
			}
		})
	}
	if after := regionState(t, c); string(after) != string(before) {
		t.Fatal("refused requests changed the region's state")
	}
}

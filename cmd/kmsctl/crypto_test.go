package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

// secret is deliberately not valid UTF-8, to show bytes pass unaltered.
var secret = []byte{0x00, 0xff, 'h', 'i', 0x80, '\n'}

func writeTempFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEncryptWithBase64PlaintextAndShorthandContext(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("Encrypt", &kmspb.EncryptResponse{
		CiphertextBlob: []byte("ciphertext"), KeyId: testKeyArn, EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
	})

	r := ts.run("encrypt", "--key-id", "alias/app",
		"--plaintext", base64.StdEncoding.EncodeToString(secret),
		"--encryption-context", "purpose=test, tenant=acme").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "CiphertextBlob": "Y2lwaGVydGV4dA==",
    "KeyId": "`+testKeyArn+`",
    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"
}
`)
	wantRequests(t, &ts.kms.fake, &kmspb.EncryptRequest{
		KeyId:             "alias/app",
		Plaintext:         secret,
		EncryptionContext: map[string]string{"purpose": "test", "tenant": "acme"},
	})
}

func TestEncryptReadsRawBytesFromFileOrStdin(t *testing.T) {
	ts := startServer(t)
	path := writeTempFile(t, "secret.bin", secret)

	ts.run("encrypt", "--key-id", "k", "--plaintext", "fileb://"+path, "--encryption-algorithm", "SYMMETRIC_DEFAULT").mustSucceed(t)
	runKmsctl(string(secret), "--endpoint", ts.endpoint, "encrypt", "--key-id", "k", "--plaintext", "fileb://-").mustSucceed(t)

	wantRequests(t, &ts.kms.fake,
		&kmspb.EncryptRequest{KeyId: "k", Plaintext: secret, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"},
		&kmspb.EncryptRequest{KeyId: "k", Plaintext: secret},
	)
}

func TestDecryptQueryPlaintextAsText(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("Decrypt", &kmspb.DecryptResponse{
		KeyId: testKeyArn, Plaintext: secret, EncryptionAlgorithm: "SYMMETRIC_DEFAULT", KeyMaterialId: "m-1",
	})
	blob := writeTempFile(t, "blob.bin", []byte("ciphertext"))

	r := ts.run("decrypt", "--ciphertext-blob", "fileb://"+blob,
		"--encryption-context", `{"purpose":"a,b=c"}`, "--key-id", "alias/app",
		"--query", "Plaintext", "--output", "text").mustSucceed(t)

	// So that "kmsctl decrypt ... --query Plaintext --output text | base64 -d" works.
	wantOutput(t, r.stdout, base64.StdEncoding.EncodeToString(secret)+"\n")
	wantRequests(t, &ts.kms.fake, &kmspb.DecryptRequest{
		CiphertextBlob:    []byte("ciphertext"),
		EncryptionContext: map[string]string{"purpose": "a,b=c"},
		KeyId:             "alias/app",
	})
}

func TestDecryptPrintsAWSShape(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("Decrypt", &kmspb.DecryptResponse{
		KeyId: testKeyArn, Plaintext: []byte("hi"), EncryptionAlgorithm: "SYMMETRIC_DEFAULT", KeyMaterialId: "m-1",
	})
	ciphertext := writeTempFile(t, "blob.b64", []byte("Y2lwaGVydGV4dA==\n"))

	r := ts.run("decrypt", "--ciphertext-blob", "file://"+ciphertext).mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "KeyId": "`+testKeyArn+`",
    "Plaintext": "aGk=",
    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    "KeyMaterialId": "m-1"
}
`)
	wantRequests(t, &ts.kms.fake, &kmspb.DecryptRequest{CiphertextBlob: []byte("ciphertext")})
}

func TestBadBinaryInputsAreUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.bin")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"decrypt", "--ciphertext-blob", "not base64!"},
			`kmsctl: error: --ciphertext-blob: not valid base64 (illegal base64 data at input byte 3); give raw bytes as fileb://PATH`},
		{[]string{"decrypt", "--ciphertext-blob", "fileb://" + missing},
			`kmsctl: error: --ciphertext-blob: cannot read fileb://` + missing + `: no such file or directory`},
		{[]string{"encrypt", "--key-id", "k", "--plaintext", "aGk=", "--encryption-context", "novalue"},
			`kmsctl: error: --encryption-context: "novalue" is not KEY=VALUE (write {"key":"value"} JSON for values with commas)`},
	} {
		ts := startServer(t)
		r := ts.run(tc.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, r.code, exitUsage)
		}
		if first, _, _ := strings.Cut(r.stderr, "\n"); first != tc.want {
			t.Errorf("%v: stderr\n%s\nwant first line\n%s", tc.args, r.stderr, tc.want)
		}
		wantRequests(t, &ts.kms.fake)
	}
}

func TestReEncryptMapsFlags(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ReEncrypt", &kmspb.ReEncryptResponse{
		CiphertextBlob: []byte("new"), SourceKeyId: "arn:old", KeyId: "arn:new",
		SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT", DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
	})

	r := ts.run("re-encrypt", "--ciphertext-blob", "b2xk",
		"--source-encryption-context", "a=1", "--source-key-id", "old",
		"--destination-key-id", "new", "--destination-encryption-context", "b=2").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "CiphertextBlob": "bmV3",
    "SourceKeyId": "arn:old",
    "KeyId": "arn:new",
    "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"
}
`)
	wantRequests(t, &ts.kms.fake, &kmspb.ReEncryptRequest{
		CiphertextBlob:               []byte("old"),
		SourceEncryptionContext:      map[string]string{"a": "1"},
		SourceKeyId:                  "old",
		DestinationKeyId:             "new",
		DestinationEncryptionContext: map[string]string{"b": "2"},
	})
}

func TestGenerateDataKey(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("GenerateDataKey", &kmspb.GenerateDataKeyResponse{CiphertextBlob: []byte("c"), Plaintext: []byte("p"), KeyId: "arn:k"})
	ts.kms.reply("GenerateDataKeyWithoutPlaintext", &kmspb.GenerateDataKeyWithoutPlaintextResponse{CiphertextBlob: []byte("c"), KeyId: "arn:k"})

	r := ts.run("generate-data-key", "--key-id", "k", "--key-spec", "AES_256", "--encryption-context", "a=b").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"CiphertextBlob\": \"Yw==\",\n    \"Plaintext\": \"cA==\",\n    \"KeyId\": \"arn:k\"\n}\n")
	r = ts.run("generate-data-key-without-plaintext", "--key-id", "k", "--number-of-bytes", "64").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"CiphertextBlob\": \"Yw==\",\n    \"KeyId\": \"arn:k\"\n}\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.GenerateDataKeyRequest{KeyId: "k", KeySpec: "AES_256", EncryptionContext: map[string]string{"a": "b"}},
		&kmspb.GenerateDataKeyWithoutPlaintextRequest{KeyId: "k", NumberOfBytes: 64},
	)
}

func TestGenerateDataKeyNeedsExactlyOneSize(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate-data-key", "--key-id", "k"}, "give --key-spec AES_256|AES_128 or --number-of-bytes N"},
		{[]string{"generate-data-key-without-plaintext", "--key-id", "k", "--key-spec", "AES_128", "--number-of-bytes", "16"},
			"give only one of --key-spec and --number-of-bytes"},
	} {
		r := ts.run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	wantRequests(t, &ts.kms.fake)
}

func TestGenerateRandom(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("GenerateRandom", &kmspb.GenerateRandomResponse{Plaintext: []byte{1, 2, 3}})

	r := ts.run("generate-random", "--number-of-bytes=3").mustSucceed(t)

	wantOutput(t, r.stdout, "{\n    \"Plaintext\": \"AQID\"\n}\n")
	wantRequests(t, &ts.kms.fake, &kmspb.GenerateRandomRequest{NumberOfBytes: 3})
}

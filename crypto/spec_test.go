package crypto

import (
	"errors"
	"strings"
	"testing"
)

func TestDataKeySize(t *testing.T) {
	tests := []struct {
		spec string
		want int
	}{
		{DataKeySpecAES128, 16},
		{DataKeySpecAES256, 32},
		{"AES_512", 0},
		{"aes_256", 0},
		{"", 0},
		{KeySpecSymmetricDefault, 0},
	}
	for _, tt := range tests {
		got, err := DataKeySize(tt.spec)
		if got != tt.want || (tt.want == 0) != errors.Is(err, ErrInvalidKeySpec) {
			t.Errorf("DataKeySize(%q) = %d, %v; want %d", tt.spec, got, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "KeySpec:") {
			t.Errorf("error %q does not name the field", err)
		}
	}
}

func TestSpecNamesMatchAWS(t *testing.T) {
	// AWS SDKs send and expect these exact strings.
	for _, tt := range [][2]string{
		{KeySpecSymmetricDefault, "SYMMETRIC_DEFAULT"},
		{KeyUsageEncryptDecrypt, "ENCRYPT_DECRYPT"},
		{EncryptionAlgorithmSymmetricDefault, "SYMMETRIC_DEFAULT"},
		{DataKeySpecAES128, "AES_128"},
		{DataKeySpecAES256, "AES_256"},
		{ProtectionLevelSoftware, "SOFTWARE"},
		{ProtectionLevelHSM, "HSM"},
	} {
		if got, want := tt[0], tt[1]; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestLengthLimits(t *testing.T) {
	tests := []struct {
		name    string
		check   func(int) error
		n       int
		wantErr string // "" means valid
	}{
		{"plaintext min", ValidPlaintextSize, 1, ""},
		{"plaintext max", ValidPlaintextSize, 4096, ""},
		{"plaintext empty", ValidPlaintextSize, 0, "Plaintext: length 0 is below the minimum 1 bytes"},
		{"plaintext too long", ValidPlaintextSize, 5000, "Plaintext: length 5000 exceeds the maximum 4096 bytes"},
		{"data key min", ValidDataKeyBytes, 1, ""},
		{"data key max", ValidDataKeyBytes, 1024, ""},
		{"data key zero", ValidDataKeyBytes, 0, "NumberOfBytes: length 0 is below the minimum 1 bytes"},
		{"data key too long", ValidDataKeyBytes, 1025, "NumberOfBytes: length 1025 exceeds the maximum 1024 bytes"},
		{"random min", ValidRandomBytes, 1, ""},
		{"random max", ValidRandomBytes, 1024, ""},
		{"random negative", ValidRandomBytes, -1, "NumberOfBytes: length -1 is below the minimum 1 bytes"},
		{"random too long", ValidRandomBytes, 1025, "NumberOfBytes: length 1025 exceeds the maximum 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.n)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLength) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrInvalidLength saying %q", err, tt.wantErr)
			}
		})
	}
}

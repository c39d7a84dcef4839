//go:build cgo

package p11

import (
	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
)

// Every template states each usage flag, so no key gets a capability from a
// device default.

const (
	domainKeyLabelPrefix = "trent-dk-"
	transportLabel       = "trent-transport"
)

func attr(t uint, v any) *pkcs11.Attribute { return pkcs11.NewAttribute(t, v) }

func aesKey(token bool, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, token),
		attr(pkcs11.CKA_PRIVATE, true),
	}, extra...)
}

func usages(wrap, unwrap, encrypt, decrypt, derive bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_WRAP, wrap),
		attr(pkcs11.CKA_UNWRAP, unwrap),
		attr(pkcs11.CKA_ENCRYPT, encrypt),
		attr(pkcs11.CKA_DECRYPT, decrypt),
		attr(pkcs11.CKA_DERIVE, derive),
		attr(pkcs11.CKA_SIGN, false),
		attr(pkcs11.CKA_VERIFY, false),
	}
}

func domainKeyLookup(id string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_LABEL, domainKeyLabelPrefix+id),
	}
}

// domainKeyTemplate: extractable only so it can be wrapped to a joining
// node's transport key. generate adds CKA_VALUE_LEN, which C_UnwrapKey
// refuses (CKR_ATTRIBUTE_READ_ONLY on SoftHSM, which likewise refuses
// CKA_MODIFIABLE in an RSA unwrap, so it is left at its default).
func domainKeyTemplate(id string, generate bool) []*pkcs11.Attribute {
	t := aesKey(true,
		attr(pkcs11.CKA_LABEL, domainKeyLabelPrefix+id),
		attr(pkcs11.CKA_ID, []byte(id)),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
	)
	t = append(t, usages(true, true, false, false, false)...)
	if generate {
		t = append(t, attr(pkcs11.CKA_VALUE_LEN, hsm.DomainKeySize))
	}
	return t
}

// newBackingKeyTemplate: a fresh backing key lives only until it is wrapped.
func newBackingKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_VALUE_LEN, hsm.BackingKeySize),
	)
	return append(t, usages(false, false, false, false, false)...)
}

// transitBackingKeyTemplate: a backing key between two wrappings (from a
// key token to a batch's session key, or back): extractable so it can be
// wrapped again, sensitive so its value can never be read, and of no other use.
func transitBackingKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
	)
	return append(t, usages(false, false, false, false, false)...)
}

// newSessionKeyTemplate: the AES-256 session key of one ExportKeyTokens
// call. It wraps the batch's backing keys and is itself wrapped to the
// peer's transport key (so extractable, but sensitive); it is destroyed
// when the call returns.
func newSessionKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_VALUE_LEN, hsm.BackingKeySize),
	)
	return append(t, usages(true, false, false, false, false)...)
}

// unwrappedSessionKeyTemplate: a session key received with ImportKeyTokens.
// It can only unwrap the batch's keys and never leaves the device.
func unwrappedSessionKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
	)
	return append(t, usages(false, true, false, false, false)...)
}

// exportedBackingKeyTemplate: UnwrapKeyToken hands the key to the caller by
// design (protection level SOFTWARE), so it must be readable.
func exportedBackingKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, false),
		attr(pkcs11.CKA_EXTRACTABLE, true),
	)
	return append(t, usages(false, false, false, false, false)...)
}

// residentBackingKeyTemplate: protection level HSM; the key can only derive
// call keys and never leaves the device again.
func residentBackingKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
	)
	return append(t, usages(false, false, false, false, true)...)
}

// callKeyTemplate: CKM_AES_ECB_ENCRYPT_DATA needs CKA_VALUE_LEN on SoftHSM
// (CKR_ATTRIBUTE_VALUE_INVALID without it).
func callKeyTemplate() []*pkcs11.Attribute {
	t := aesKey(false,
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_VALUE_LEN, hsm.BackingKeySize),
	)
	return append(t, usages(false, false, true, true, false)...)
}

func transportLookup(class uint) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_LABEL, transportLabel),
	}
}

func transportPublicTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, false),
		attr(pkcs11.CKA_LABEL, transportLabel),
		attr(pkcs11.CKA_ID, []byte(transportLabel)),
		attr(pkcs11.CKA_MODULUS_BITS, transportKeyBits),
		attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_VERIFY, false),
	}
}

// transportPrivateTemplate: may only unwrap, and never leaves the device.
func transportPrivateTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_LABEL, transportLabel),
		attr(pkcs11.CKA_ID, []byte(transportLabel)),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_UNWRAP, true),
		attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_SIGN, false),
	}
}

// peerPublicTemplate: a joining node's transport key, as a session object
// that exists only for one C_WrapKey.
func peerPublicTemplate(modulus, exponent []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_MODULUS, modulus),
		attr(pkcs11.CKA_PUBLIC_EXPONENT, exponent),
		attr(pkcs11.CKA_WRAP, true),
		attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_VERIFY, false),
	}
}

// p256Params is CKA_EC_PARAMS for P-256: the DER of the namedCurve OID
// 1.2.840.10045.3.1.7 (prime256v1).
var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// signingPublicTemplate: the public half is needed only to read CKA_EC_POINT
// once; verification happens outside the HSM.
func signingPublicTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_EC_PARAMS, p256Params),
		attr(pkcs11.CKA_VERIFY, false),
		attr(pkcs11.CKA_DERIVE, false),
	}
}

func ecPrivateKey(extractable, sign bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, extractable),
		attr(pkcs11.CKA_SIGN, sign),
		attr(pkcs11.CKA_DERIVE, false),
		attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_UNWRAP, false),
	}
}

// newSigningKeyTemplate: a fresh signing key lives only until it is wrapped
// into a token, so it may not sign. SoftHSM 2.6 wraps a sensitive,
// extractable EC private key with CKM_AES_KEY_WRAP_PAD (its PKCS#8
// encoding; a non-extractable one fails with CKR_KEY_UNEXTRACTABLE).
func newSigningKeyTemplate() []*pkcs11.Attribute { return ecPrivateKey(true, false) }

// residentSigningKeyTemplate: a signing key unwrapped for one signature;
// it can only sign and never leaves the device again. The curve comes from
// the PKCS#8 encoding in the token, so CKA_EC_PARAMS is not given.
func residentSigningKeyTemplate() []*pkcs11.Attribute { return ecPrivateKey(false, true) }

func mechanism(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

// oaepMechanism: SoftHSM 2.6 accepts only SHA-1 with MGF1-SHA1 for
// CKM_RSA_PKCS_OAEP in C_WrapKey/C_UnwrapKey (CKR_ARGUMENTS_BAD for
// SHA-256), and the software backend must interoperate, so both use SHA-1.
// OAEP's security does not rest on SHA-1's collision resistance. SoftHSM
// also refuses a label (CKR_ARGUMENTS_BAD), so wrapped domain keys and
// wrapped session keys cannot be told apart (see DESIGN.md).
func oaepMechanism() []*pkcs11.Mechanism {
	return mechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))
}

// keyWrapMechanism is RFC 5649 with its default initial value.
func keyWrapMechanism() []*pkcs11.Mechanism { return mechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil) }

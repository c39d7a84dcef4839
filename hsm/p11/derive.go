//go:build cgo

package p11

/*
#include <stdlib.h>

// CK_KEY_DERIVATION_STRING_DATA, declared here because miekg/pkcs11 has no
// constructor for it. CK_ULONG is unsigned long; Cryptoki structures are
// packed to 1 byte on Windows.
#ifdef _WIN32
#pragma pack(push, 1)
#endif
typedef struct {
	unsigned char *pData;
	unsigned long ulLen;
} trent_key_derivation_string_data;
#ifdef _WIN32
#pragma pack(pop)
#endif
*/
import "C"

import (
	"unsafe"

	"github.com/miekg/pkcs11"
)

// ecbEncryptDataMechanism builds CKM_AES_ECB_ENCRYPT_DATA over data. The
// parameter structure points at the data, so the data must live in C memory
// (cgo forbids handing C a Go pointer inside Go memory); call free after the
// C_DeriveKey that uses the mechanism.
func ecbEncryptDataMechanism(data []byte) (mech []*pkcs11.Mechanism, free func()) {
	cData := C.CBytes(data)
	param := C.trent_key_derivation_string_data{
		pData: (*C.uchar)(cData),
		ulLen: C.ulong(len(data)),
	}
	raw := C.GoBytes(unsafe.Pointer(&param), C.int(unsafe.Sizeof(param)))
	return mechanism(pkcs11.CKM_AES_ECB_ENCRYPT_DATA, raw), func() {
		// The salt is not secret, but scrub it anyway so no copy lingers.
		clear(unsafe.Slice((*byte)(cData), len(data)))
		C.free(cData)
	}
}

// Package p11 is the PKCS#11 Backend, built on miekg/pkcs11 directly. It is
// the only cgo user in the module; built with CGO_ENABLED=0 its Open returns
// hsm.ErrUnsupported.
//
// The token is found by label, never by slot index. Domain keys and the
// transport key pair are token objects; backing keys exist only as session
// objects for the length of a call (or in a bounded handle cache for
// protection level HSM) and leave the device only wrapped.
package p11

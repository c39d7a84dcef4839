package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// MaxGrantTokenLen is the longest grant token DecodeGrantToken accepts, in
// characters (the AWS limit).
const MaxGrantTokenLen = 8192

// tokenLabel is prepended to the grant JSON before MACing, so a MAC made for
// a grant token is never valid for anything else signed with the same key.
const tokenLabel = "trent grant token v1\x00"

// EncodeGrantToken returns a grant token for g: base64url (no padding) of
// the grant's JSON followed by its MAC. The token is self-contained, so a
// node can honour a grant it has not yet replicated.
//
// mac computes the tag over the message it is given, which is a fixed
// domain-separation label followed by the grant JSON (not the JSON alone);
// the same message is passed to DecodeGrantToken's verify. Use HMAC-SHA256
// under a region secret. Keep grants small enough that the token fits in
// MaxGrantTokenLen, or DecodeGrantToken will refuse it.
func EncodeGrantToken(g Grant, mac func([]byte) []byte) string {
	js, err := json.Marshal(g)
	if err != nil {
		panic("policy: cannot encode grant: " + err.Error()) // unreachable: strings, maps of strings, int64
	}
	msg := append([]byte(tokenLabel), js...)
	tag := mac(msg)
	return base64.RawURLEncoding.EncodeToString(append(js, tag...))
}

// DecodeGrantToken checks a token made by EncodeGrantToken and returns its
// grant. verify must report whether tag is the MAC of msg, in constant time
// (hmac.Equal). Every failure wraps ErrBadGrantToken.
//
// A valid token proves only that the service issued the grant. The caller
// must still refuse tokens of grants it knows are retired or revoked, bound
// how long after CreationTimeUnixNano it honours a grant it has not
// replicated, and check that the grant is for the key being used.
func DecodeGrantToken(tok string, verify func(msg, tag []byte) bool) (Grant, error) {
	bad := func(why string) (Grant, error) { return Grant{}, fmt.Errorf("%w: %s", ErrBadGrantToken, why) }
	if tok == "" {
		return bad("empty")
	}
	if len(tok) > MaxGrantTokenLen {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return bad("not base64url")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return bad("malformed")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var js json.RawMessage
	if err := dec.Decode(&js); err != nil {
		return bad("malformed")
	}
	off := dec.InputOffset()
	if off <= 0 || off >= int64(len(raw)) {
		return bad("no MAC")
	}
	js, tag := raw[:off], raw[off:]
	msg := append([]byte(tokenLabel), js...)
	if !verify(msg, tag) {
		return bad("MAC does not verify")
	}
	var g Grant
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	if err := d.Decode(&g); err != nil {
		return bad("malformed grant")
	}
	if g.ID == "" {
		return bad("grant has no ID")
	}
	if err := ValidateGrant(g); err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrBadGrantToken, err)
	}
	return g, nil
}

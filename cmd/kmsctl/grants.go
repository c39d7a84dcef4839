package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/trent-kms/trent/transport/kmspb"
)

var (
	grantTokensFlag = flagSpec{name: "grant-tokens", kind: kindList, metavar: "TOKEN", usage: "grant tokens from create-grant, one argument each, for grants not yet replicated everywhere"}
	dryRunFlag      = flagSpec{name: "dry-run", kind: kindBool, usage: "check the request without making it; success is reported as DryRunOperationException"}
)

var grantCommands = []*command{
	{
		name: "create-grant", op: "CreateGrant",
		summary: "Let a principal perform some operations with a key.",
		flags: []flagSpec{keyIDFlag,
			{name: "grantee-principal", kind: kindString, required: true, metavar: "PRINCIPAL", usage: "principal name the grant is for"},
			{name: "retiring-principal", kind: kindString, metavar: "PRINCIPAL", usage: "principal name that may retire the grant"},
			{name: "operations", kind: kindList, required: true, metavar: "OPERATION", usage: "operations allowed (Encrypt, Decrypt, GenerateDataKey, ...), one argument each, or a JSON list"},
			{name: "constraints", kind: kindConstraints, metavar: "CONSTRAINTS", usage: `EncryptionContextSubset={k=v,...} or EncryptionContextEquals={k=v,...}, or JSON {"EncryptionContextSubset":{"k":"v"}}`},
			grantTokensFlag,
			{name: "name", kind: kindString, usage: "grant name; repeating a request with the same name returns the same grant"},
			dryRunFlag,
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.CreateGrant(r.ctx, &kmspb.CreateGrantRequest{
				KeyId:             r.flags.str("key-id"),
				GranteePrincipal:  r.flags.str("grantee-principal"),
				RetiringPrincipal: r.flags.str("retiring-principal"),
				Operations:        r.flags.list("operations"),
				Constraints:       r.flags.constraints("constraints"),
				GrantTokens:       r.flags.list("grant-tokens"),
				Name:              r.flags.str("name"),
				DryRun:            r.flags.bool("dry-run"),
			})
			if err != nil {
				return nil, err
			}
			return createGrantOutput{GrantToken: resp.GetGrantToken(), GrantID: resp.GetGrantId()}, nil
		},
	},
	{
		name: "list-grants", op: "ListGrants",
		summary: "List the grants of a key.",
		flags: []flagSpec{keyIDFlag,
			{name: "grant-id", kind: kindString, usage: "list only this grant"},
			{name: "grantee-principal", kind: kindString, metavar: "PRINCIPAL", usage: "list only the grants for this principal"},
			limitFlag, markerFlag,
		},
		run: func(r *request) (any, error) {
			return listGrants(r, func(marker string) (*kmspb.ListGrantsResponse, error) {
				return r.kms.ListGrants(r.ctx, &kmspb.ListGrantsRequest{
					KeyId:            r.flags.str("key-id"),
					GrantId:          r.flags.str("grant-id"),
					GranteePrincipal: r.flags.str("grantee-principal"),
					Limit:            r.flags.int32("limit"),
					Marker:           marker,
				})
			})
		},
	},
	{
		name: "list-retirable-grants", op: "ListRetirableGrants",
		summary: "List the grants a principal may retire.",
		flags: []flagSpec{
			{name: "retiring-principal", kind: kindString, required: true, metavar: "PRINCIPAL", usage: "your own principal name (the admin role may give any)"},
			limitFlag, markerFlag,
		},
		run: func(r *request) (any, error) {
			return listGrants(r, func(marker string) (*kmspb.ListGrantsResponse, error) {
				return r.kms.ListRetirableGrants(r.ctx, &kmspb.ListRetirableGrantsRequest{
					RetiringPrincipal: r.flags.str("retiring-principal"),
					Limit:             r.flags.int32("limit"),
					Marker:            marker,
				})
			})
		},
	},
	{
		name: "retire-grant", op: "RetireGrant",
		summary: "Remove a grant, as its retiring principal or grantee.",
		flags: []flagSpec{
			{name: "grant-token", kind: kindString, metavar: "TOKEN", usage: "the grant's token; or give --key-id and --grant-id"},
			{name: "key-id", kind: kindString, usage: "key of the grant, with --grant-id"},
			{name: "grant-id", kind: kindString, usage: "id of the grant, with --key-id"},
			dryRunFlag,
		},
		run: func(r *request) (any, error) {
			// The API takes either way of naming the grant; catch a half
			// given one locally rather than send a request that cannot work.
			if !r.flags.has("grant-token") && !(r.flags.has("key-id") && r.flags.has("grant-id")) {
				return nil, usagef("give --grant-token, or --key-id and --grant-id")
			}
			_, err := r.kms.RetireGrant(r.ctx, &kmspb.RetireGrantRequest{
				GrantToken: r.flags.str("grant-token"),
				KeyId:      r.flags.str("key-id"),
				GrantId:    r.flags.str("grant-id"),
				DryRun:     r.flags.bool("dry-run"),
			})
			return nil, err
		},
	},
	{
		name: "revoke-grant", op: "RevokeGrant",
		summary: "Remove a grant, as the key's administrator.",
		flags: []flagSpec{keyIDFlag,
			{name: "grant-id", kind: kindString, required: true, usage: "id of the grant, as create-grant or list-grants shows it"},
			dryRunFlag,
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.RevokeGrant(r.ctx, &kmspb.RevokeGrantRequest{
				KeyId:   r.flags.str("key-id"),
				GrantId: r.flags.str("grant-id"),
				DryRun:  r.flags.bool("dry-run"),
			})
			return nil, err
		},
	},
}

// listGrants pages through ListGrants or ListRetirableGrants, which answer
// in the same shape.
func listGrants(r *request, list func(marker string) (*kmspb.ListGrantsResponse, error)) (any, error) {
	out := listGrantsOutput{Grants: []grantJSON{}}
	var err error
	out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
		resp, err := list(marker)
		for _, g := range resp.GetGrants() {
			out.Grants = append(out.Grants, newGrantJSON(g))
		}
		return resp.GetNextMarker(), resp.GetTruncated(), err
	})
	return out, err
}

const (
	constraintSubset = "EncryptionContextSubset"
	constraintEquals = "EncryptionContextEquals"
)

// parseConstraints reads --constraints as the AWS CLI does: shorthand
// EncryptionContextSubset={k=v,k2=v2} (or EncryptionContextEquals=...), or
// a JSON object {"EncryptionContextSubset":{"k":"v"}}, inline or from
// file://PATH.
func parseConstraints(text string) (*kmspb.GrantConstraints, error) {
	text, err := readParamFile(text)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(text), "{") {
		return constraintsFromJSON(text)
	}
	return constraintsFromShorthand(text)
}

func constraintsFromJSON(text string) (*kmspb.GrantConstraints, error) {
	// Field names are matched exactly, as AWS does; encoding/json alone
	// would also take "encryptioncontextsubset".
	var fields map[string]json.RawMessage
	if err := decodeOneJSON(text, &fields); err != nil {
		return nil, fmt.Errorf("invalid JSON constraints: %v", err)
	}
	c := &kmspb.GrantConstraints{}
	for name, raw := range fields {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("invalid JSON constraints: %s: want an object of strings: %v", name, err)
		}
		switch name {
		case constraintSubset:
			c.EncryptionContextSubset = m
		case constraintEquals:
			c.EncryptionContextEquals = m
		default:
			return nil, unknownConstraint(name)
		}
	}
	return c, checkConstraints(c)
}

// checkConstraints refuses constraints that constrain nothing. The API
// takes an empty map as no constraint at all, so a grant meant to be limited
// to an encryption context would silently allow any; that is worth a usage
// error before anything is sent.
func checkConstraints(c *kmspb.GrantConstraints) error {
	for _, f := range []struct {
		name string
		m    map[string]string
	}{{constraintSubset, c.EncryptionContextSubset}, {constraintEquals, c.EncryptionContextEquals}} {
		if f.m != nil && len(f.m) == 0 {
			return fmt.Errorf("%s is empty; give at least one KEY=VALUE, or leave out --constraints", f.name)
		}
	}
	if c.EncryptionContextSubset == nil && c.EncryptionContextEquals == nil {
		return fmt.Errorf("no constraint given: want %s or %s", constraintSubset, constraintEquals)
	}
	return nil
}

// decodeOneJSON decodes text into v and refuses anything after the value,
// which json.Unmarshal would report less clearly.
func decodeOneJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more text after the JSON value")
	}
	return nil
}

func unknownConstraint(name string) error {
	return fmt.Errorf("unknown constraint %q, must be one of: %s, %s", name, constraintSubset, constraintEquals)
}

// constraintsFromShorthand parses the AWS CLI shorthand for a structure of
// maps: NAME={KEY=VALUE,...}[,NAME={...}]. Keys are letters, digits and
// - _ . # / : as in the AWS CLI; a value is unquoted (up to the next , or }
// or white space; \, is a comma), or single- or double-quoted with \ escaping
// the quote and itself. Anything else needs the JSON form.
func constraintsFromShorthand(text string) (*kmspb.GrantConstraints, error) {
	p := &shorthandParser{s: text}
	c := &kmspb.GrantConstraints{}
	for {
		p.skipSpace()
		start := p.i
		name := p.key()
		if name != constraintSubset && name != constraintEquals {
			if name == "" {
				return nil, p.errorf(`expected %s={KEY=VALUE,...} or %s={KEY=VALUE,...}`, constraintSubset, constraintEquals)
			}
			return nil, unknownConstraint(name)
		}
		if err := p.expect('='); err != nil {
			return nil, err
		}
		m, err := p.hash()
		if err != nil {
			return nil, err
		}
		target := &c.EncryptionContextSubset
		if name == constraintEquals {
			target = &c.EncryptionContextEquals
		}
		if *target != nil {
			p.i = start
			return nil, p.errorf("%s given twice", name)
		}
		*target = m
		p.skipSpace()
		if p.eof() {
			return c, checkConstraints(c)
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
	}
}

type shorthandParser struct {
	s string
	i int
}

func (p *shorthandParser) eof() bool { return p.i >= len(p.s) }

func (p *shorthandParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *shorthandParser) skipSpace() {
	for !p.eof() && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *shorthandParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at character %d of %q", fmt.Sprintf(format, args...), p.i+1, p.s)
}

// expect consumes c and the white space around it.
func (p *shorthandParser) expect(c byte) error {
	p.skipSpace()
	if p.peek() != c {
		found := "the end"
		if !p.eof() {
			found = fmt.Sprintf("%q", p.s[p.i])
		}
		return p.errorf("expected %q, found %s", c, found)
	}
	p.i++
	p.skipSpace()
	return nil
}

func isShorthandKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.#/:", c) >= 0
}

func (p *shorthandParser) key() string {
	start := p.i
	for !p.eof() && isShorthandKeyByte(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// hash parses {KEY=VALUE,...}; a comma may end the list, as the AWS CLI
// allows.
func (p *shorthandParser) hash() (map[string]string, error) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for {
		if p.peek() == '}' {
			p.i++
			return m, nil
		}
		start := p.i
		k := p.key()
		if k == "" {
			return nil, p.errorf(`expected KEY=VALUE (keys are letters, digits and - _ . # / :; write JSON for others)`)
		}
		if _, dup := m[k]; dup {
			p.i = start
			return nil, p.errorf("key %q given twice", k)
		}
		if err := p.expect('='); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.skipSpace()
		if p.peek() != '}' {
			if err := p.expect(','); err != nil {
				return nil, err
			}
		}
	}
}

func (p *shorthandParser) value() (string, error) {
	switch q := p.peek(); q {
	case '\'', '"':
		start := p.i
		p.i++
		var b strings.Builder
		for !p.eof() {
			c := p.s[p.i]
			p.i++
			switch {
			case c == q:
				return b.String(), nil
			case c == '\\' && (p.peek() == q || p.peek() == '\\'):
				b.WriteByte(p.s[p.i])
				p.i++
			default:
				b.WriteByte(c)
			}
		}
		p.i = start
		return "", p.errorf("unterminated %c-quoted value", q)
	case '{', '[':
		return "", p.errorf("expected a string value (quote it if it starts with %c)", q)
	}
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		if c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == ',' {
			b.WriteByte(',')
			p.i += 2
			continue
		}
		if strings.IndexByte(",} \t\r\n", c) >= 0 {
			break
		}
		b.WriteByte(c)
		p.i++
	}
	return b.String(), nil
}

package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPolicySize is the largest policy document Parse accepts, in bytes (the
// AWS KMS key policy limit).
const MaxPolicySize = 32 * 1024

// Version is the only policy language version Parse accepts.
const Version = "2012-10-17"

const maxDepth = 8 // deepest legitimate nesting is 6: doc.Statement[i].Condition.Op.Key[j]

// Parse parses and validates a key policy document and compiles it for
// Evaluate. Any error is a *ParseError (wrapping ErrMalformed) naming the
// offending element. Parse is strict: duplicate object keys, unknown fields,
// unknown actions, condition operators and condition keys are all errors.
func Parse(raw []byte) (*Policy, error) {
	p, err := parse(raw)
	if err != nil {
		return nil, err // a typed nil *ParseError must not become a non-nil error
	}
	return p, nil
}

func parse(raw []byte) (*Policy, *ParseError) {
	if len(raw) > MaxPolicySize {
		return nil, perr("", "the document is "+strconv.Itoa(len(raw))+" bytes; the limit is "+strconv.Itoa(MaxPolicySize))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, perr("", "the document is empty")
	}
	if !utf8.Valid(raw) {
		return nil, perr("", "the document is not valid UTF-8")
	}
	root, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if root.kind != jObject {
		return nil, perr("", "the document must be a JSON object, got "+root.describe())
	}

	p := &Policy{}
	var version, stmts *jnode
	for i, k := range root.keys {
		v := root.kids[i]
		switch k {
		case "Version":
			version = v
		case "Id":
			if v.kind != jString {
				return nil, perr(k, "must be a string, got "+v.describe())
			}
		case "Statement":
			stmts = v
		default:
			return nil, unknownField("", k, "Version", "Id", "Statement")
		}
	}
	switch {
	case version == nil:
		return nil, perr("Version", "missing; it must be \""+Version+"\"")
	case version.kind != jString:
		return nil, perr("Version", "must be the string \""+Version+"\", got "+version.describe())
	case version.str != Version:
		return nil, perr("Version", "unsupported version "+quote(version.str)+"; it must be \""+Version+"\"")
	}
	if stmts == nil {
		return nil, perr("Statement", "missing")
	}

	var list []*jnode
	var paths []string
	switch stmts.kind {
	case jObject:
		list, paths = []*jnode{stmts}, []string{"Statement"}
	case jArray:
		if len(stmts.kids) == 0 {
			return nil, perr("Statement", "is empty; a policy needs at least one statement")
		}
		list = stmts.kids
		for i := range list {
			paths = append(paths, index("Statement", i))
		}
	default:
		return nil, perr("Statement", "must be an object or an array of objects, got "+stmts.describe())
	}

	sids := make(map[string]string)
	for i, n := range list {
		s, deny, err := compileStatement(n, paths[i], sids)
		if err != nil {
			return nil, err
		}
		if deny {
			p.deny = append(p.deny, s)
		} else {
			p.allow = append(p.allow, s)
		}
	}
	return p, nil
}

func compileStatement(n *jnode, path string, sids map[string]string) (s statement, deny bool, err *ParseError) {
	if n.kind != jObject {
		return s, false, perr(path, "a statement must be an object, got "+n.describe())
	}
	var effect, principal, action, resource, cond *jnode
	for i, k := range n.keys {
		v := n.kids[i]
		switch k {
		case "Sid":
			if v.kind != jString {
				return s, false, perr(join(path, k), "must be a string, got "+v.describe())
			}
			if msg := checkText(v.str); msg != "" {
				return s, false, perr(join(path, k), msg)
			}
			if v.str != "" {
				if prev, dup := sids[v.str]; dup {
					return s, false, perr(join(path, k), "duplicate Sid "+quote(v.str)+" (also used by "+prev+"); Sids must be unique within a policy")
				}
				sids[v.str] = path
			}
			s.sid = v.str
		case "Effect":
			effect = v
		case "Principal":
			principal = v
		case "Action":
			action = v
		case "Resource":
			resource = v
		case "Condition":
			cond = v
		case "NotPrincipal", "NotAction", "NotResource":
			pos := strings.TrimPrefix(k, "Not")
			return s, false, perr(join(path, k), k+" is not supported: list what the statement applies to in "+pos+" instead")
		default:
			return s, false, unknownField(path, k, "Sid", "Effect", "Principal", "Action", "Resource", "Condition")
		}
	}

	switch {
	case effect == nil:
		return s, false, perr(join(path, "Effect"), "missing; it must be \"Allow\" or \"Deny\"")
	case effect.kind != jString:
		return s, false, perr(join(path, "Effect"), "must be \"Allow\" or \"Deny\", got "+effect.describe())
	case effect.str == "Allow":
	case effect.str == "Deny":
		deny = true
	default:
		return s, false, perr(join(path, "Effect"), "must be \"Allow\" or \"Deny\" (case-sensitive), got "+quote(effect.str))
	}

	if principal == nil {
		return s, false, perr(join(path, "Principal"), "missing; a key policy statement must name its principals (\"*\" for everyone)")
	}
	if s.principal, err = compilePrincipal(principal, join(path, "Principal")); err != nil {
		return s, false, err
	}

	if action == nil {
		return s, false, perr(join(path, "Action"), "missing")
	}
	if s.anyAction, s.actions, err = compileActions(action, join(path, "Action")); err != nil {
		return s, false, err
	}

	if resource == nil {
		return s, false, perr(join(path, "Resource"), "missing; in a key policy use \"*\" (this key)")
	}
	if s.anyRes, s.resources, err = compileResources(resource, join(path, "Resource")); err != nil {
		return s, false, err
	}

	if cond != nil {
		if s.conds, err = compileConditions(cond, join(path, "Condition")); err != nil {
			return s, false, err
		}
	}

	name := path
	if s.sid != "" {
		name = "statement " + strconv.Quote(s.sid)
	}
	if deny {
		s.reason = "explicitly denied by " + name
	} else {
		s.reason = "allowed by " + name
	}
	return s, deny, nil
}

// compilePrincipal accepts "*" or {"Trent": V, "AWS": V} where V is a string
// or an array of strings: "*", a principal name pattern, or "role/" followed
// by a role name pattern.
func compilePrincipal(n *jnode, path string) (ps principalSet, err *ParseError) {
	switch n.kind {
	case jString:
		if n.str == "*" {
			ps.any = true
			return ps, nil
		}
		return ps, perr(path, "must be \"*\" or an object such as {\"Trent\": [\"NAME\", \"role/ROLE\"]}, got "+quote(n.str))
	case jObject:
	default:
		return ps, perr(path, "must be \"*\" or an object such as {\"Trent\": [\"NAME\", \"role/ROLE\"]}, got "+n.describe())
	}
	if len(n.keys) == 0 {
		return ps, perr(path, "names no principal")
	}
	for i, k := range n.keys {
		kPath := join(path, k)
		switch k {
		case "Trent", "AWS":
		case "Service", "Federated", "CanonicalUser":
			return ps, perr(kPath, k+" principals do not exist in Trent; use \"Trent\" with principal names and role/ROLE")
		default:
			return ps, unknownField(path, k, "Trent", "AWS")
		}
		v := n.kids[i]
		vals, err := stringList(v, kPath, "principal")
		if err != nil {
			return ps, err
		}
		for j, e := range vals {
			ePath := kPath
			if v.kind == jArray {
				ePath = index(kPath, j)
			}
			switch {
			case e == "*":
				ps.any = true
			case strings.HasPrefix(e, "role/"):
				r := e[len("role/"):]
				if msg := checkName(r); msg != "" {
					return ps, perr(ePath, "role "+msg)
				}
				ps.roles = append(ps.roles, compilePattern(r, false))
			case strings.HasPrefix(e, "arn:"):
				return ps, perr(ePath, "ARNs do not name Trent principals; write a principal name (\"NAME\") or a role (\"role/ROLE\"), got "+quote(e))
			default:
				if msg := checkName(e); msg != "" {
					return ps, perr(ePath, "principal "+msg)
				}
				ps.names = append(ps.names, compilePattern(e, false))
			}
		}
	}
	if ps.any {
		ps.names, ps.roles = nil, nil
	}
	return ps, nil
}

// checkName vets a principal or role name pattern.
func checkName(s string) string {
	if s == "" {
		return "name is empty"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "name " + quote(s) + " contains white space or a control character"
		}
	}
	return ""
}

func compileActions(n *jnode, path string) (any bool, pats []pattern, err *ParseError) {
	vals, err := stringList(n, path, "action")
	if err != nil {
		return false, nil, err
	}
	for i, a := range vals {
		aPath := path
		if n.kind == jArray {
			aPath = index(path, i)
		}
		if a == "*" {
			any = true
			continue
		}
		svc, name, ok := strings.Cut(a, ":")
		if !ok || name == "" {
			return false, nil, perr(aPath, "an action is SERVICE:Name, such as \"kms:Encrypt\" or \"kms:*\", got "+quote(a))
		}
		if !asciiEqualFold(svc, "kms") && !asciiEqualFold(svc, "trent") {
			return false, nil, perr(aPath, "unknown service "+quote(svc)+" in action "+quote(a)+"; key policies govern \"kms:\" (and \"trent:\") actions")
		}
		p := compilePattern(a, true)
		if !matchesKnownAction(&p) {
			if hasWildcard(a) {
				return false, nil, perr(aPath, "action pattern "+quote(a)+" matches no action")
			}
			return false, nil, perr(aPath, "unknown action "+quote(a))
		}
		pats = append(pats, p)
	}
	if any {
		pats = nil
	}
	return any, pats, nil
}

func matchesKnownAction(p *pattern) bool {
	for _, a := range knownActions {
		if p.match(a) {
			return true
		}
	}
	return false
}

func compileResources(n *jnode, path string) (any bool, pats []pattern, err *ParseError) {
	vals, err := stringList(n, path, "resource")
	if err != nil {
		return false, nil, err
	}
	for i, r := range vals {
		rPath := path
		if n.kind == jArray {
			rPath = index(path, i)
		}
		switch {
		case r == "*":
			any = true
		case strings.HasPrefix(r, "arn:trent:kms:"):
			pats = append(pats, compilePattern(r, false))
		default:
			return false, nil, perr(rPath, "must be \"*\" (this key) or a key ARN such as \"arn:trent:kms:REGION::key/ID\", got "+quote(r))
		}
	}
	if any {
		pats = nil
	}
	return any, pats, nil
}

// stringList accepts a string or a non-empty array of strings.
func stringList(n *jnode, path, what string) ([]string, *ParseError) {
	switch n.kind {
	case jString:
		if n.str == "" {
			if what == "condition value" {
				return []string{""}, nil
			}
			return nil, perr(path, "empty "+what)
		}
		return []string{n.str}, nil
	case jArray:
		if len(n.kids) == 0 {
			return nil, perr(path, "empty array; give at least one "+what)
		}
		out := make([]string, len(n.kids))
		for i, k := range n.kids {
			if k.kind != jString {
				return nil, perr(index(path, i), "each "+what+" must be a string, got "+k.describe())
			}
			if k.str == "" && what != "condition value" {
				return nil, perr(index(path, i), "empty "+what)
			}
			out[i] = k.str
		}
		return out, nil
	}
	return nil, perr(path, "must be a string or an array of strings, got "+n.describe())
}

func checkText(s string) string {
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	return ""
}

func unknownField(path, k string, allowed ...string) *ParseError {
	for _, a := range allowed {
		if strings.EqualFold(a, k) {
			return perr(join(path, k), "unknown field; did you mean "+strconv.Quote(a)+"? (field names are case-sensitive)")
		}
	}
	for _, a := range allowed {
		if editDistance(strings.ToLower(a), strings.ToLower(k)) <= 2 {
			return perr(join(path, k), "unknown field; did you mean "+strconv.Quote(a)+"?")
		}
	}
	return perr(join(path, k), "unknown field (allowed here: "+strings.Join(allowed, ", ")+")")
}

// editDistance is the Levenshtein distance of two short strings, for
// "did you mean" hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func perr(path, msg string) *ParseError { return &ParseError{Path: path, Msg: msg} }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// quote quotes a policy value for an error message, shortened so messages
// stay readable.
func quote(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + "..."
	}
	return strconv.Quote(s)
}

// JSON is decoded into a small tree, not into structs, so that duplicate keys
// are caught, field names are matched exactly, and every error has a path.

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

type jnode struct {
	kind jkind
	str  string   // string value, number literal, "true"/"false"
	keys []string // object member names, in document order
	kids []*jnode // object member values (parallel to keys) or array elements
}

func (n *jnode) describe() string {
	switch n.kind {
	case jNull:
		return "null"
	case jBool:
		return n.str
	case jNumber:
		return "the number " + n.str
	case jString:
		return "the string " + quote(n.str)
	case jArray:
		return "an array"
	}
	return "an object"
}

func decodeJSON(raw []byte) (*jnode, *ParseError) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	root, err := decodeValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, e := dec.Token(); e != io.EOF {
		return nil, perr("", "unexpected data after the policy document at byte "+strconv.FormatInt(dec.InputOffset(), 10))
	}
	return root, nil
}

func decodeValue(dec *json.Decoder, path string, depth int) (*jnode, *ParseError) {
	tok, e := dec.Token()
	if e != nil {
		return nil, jsonErr(dec, path, e)
	}
	switch t := tok.(type) {
	case string:
		return &jnode{kind: jString, str: t}, nil
	case json.Number:
		return &jnode{kind: jNumber, str: t.String()}, nil
	case bool:
		return &jnode{kind: jBool, str: strconv.FormatBool(t)}, nil
	case nil:
		return &jnode{kind: jNull}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, perr(path, "nested too deeply")
		}
		switch t {
		case '{':
			n := &jnode{kind: jObject}
			var seen map[string]bool
			for dec.More() {
				kt, e := dec.Token()
				if e != nil {
					return nil, jsonErr(dec, path, e)
				}
				key, ok := kt.(string)
				if !ok {
					return nil, perr(path, "invalid JSON: object key is not a string")
				}
				kPath := join(path, key)
				if seen == nil {
					seen = make(map[string]bool)
				}
				if seen[key] {
					return nil, perr(kPath, "duplicate key")
				}
				seen[key] = true
				child, err := decodeValue(dec, kPath, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.kids = append(n.kids, child)
			}
			if _, e := dec.Token(); e != nil {
				return nil, jsonErr(dec, path, e)
			}
			return n, nil
		case '[':
			n := &jnode{kind: jArray}
			for i := 0; dec.More(); i++ {
				child, err := decodeValue(dec, index(path, i), depth+1)
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, child)
			}
			if _, e := dec.Token(); e != nil {
				return nil, jsonErr(dec, path, e)
			}
			return n, nil
		}
	}
	return nil, perr(path, "invalid JSON at byte "+strconv.FormatInt(dec.InputOffset(), 10))
}

func jsonErr(dec *json.Decoder, path string, e error) *ParseError {
	var se *json.SyntaxError
	switch {
	case errors.As(e, &se):
		return perr(path, "invalid JSON at byte "+strconv.FormatInt(se.Offset, 10)+": "+se.Error())
	case errors.Is(e, io.EOF), errors.Is(e, io.ErrUnexpectedEOF):
		return perr(path, "invalid JSON: unexpected end of the document")
	}
	return perr(path, "invalid JSON at byte "+strconv.FormatInt(dec.InputOffset(), 10)+": "+e.Error())
}

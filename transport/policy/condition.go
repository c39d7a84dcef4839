package policy

import (
	"strings"
)

// Condition keys. Names are matched without regard to case, except the
// context-key part of kms:EncryptionContext:<context-key>, which is compared
// exactly with the keys of the request's encryption context.
type condKey uint8

const (
	keyContextValue    condKey = iota + 1 // kms:EncryptionContext:<k>   single-valued
	keyContextKeys                        // kms:EncryptionContextKeys   multi-valued
	keyCallerPrincipal                    // kms:CallerPrincipal         single-valued
	keyViaAlias                           // kms:ViaAlias (kms:RequestAlias) single-valued
)

const contextKeyPrefix = "kms:encryptioncontext:" // lower-case

type opKind uint8

const (
	opEquals opKind = iota + 1
	opEqualsFold
	opLike
	opNull
)

type setKind uint8

const (
	setNone setKind = iota
	setAny          // ForAnyValue:
	setAll          // ForAllValues:
)

// condition is one (operator, key, values) triple of a Condition element.
type condition struct {
	key      condKey
	ctxKey   string // for keyContextValue
	op       opKind
	negate   bool // StringNot...
	set      setKind
	ifExists bool
	wantNull bool // for opNull: true means "the key must be absent"
	values   []string
	pats     []pattern // for opLike
}

// eval reports whether the condition holds for req.
//
// Absent keys, as AWS evaluates them: a single-valued key is absent when the
// request has no such context key, no alias, or an empty principal. Then
// positive operators are false, negated operators (StringNot...) are true,
// ...IfExists is true, and Null is true exactly when it asks for absence.
// kms:EncryptionContextKeys is absent when the context is empty: ForAnyValue
// is false, ForAllValues is true (so pair ForAllValues with a Null check when
// a context must be present), ...IfExists is true.
func (c *condition) eval(req *Request) bool {
	if c.key == keyContextKeys {
		present := len(req.EncryptionContext) > 0
		if c.op == opNull {
			return present != c.wantNull
		}
		if !present {
			return c.ifExists || c.set == setAll
		}
		if c.set == setAll {
			for k := range req.EncryptionContext {
				if !c.test(k) {
					return false
				}
			}
			return true
		}
		for k := range req.EncryptionContext {
			if c.test(k) {
				return true
			}
		}
		return false
	}

	var v string
	var present bool
	switch c.key {
	case keyContextValue:
		v, present = req.EncryptionContext[c.ctxKey]
	case keyCallerPrincipal:
		v, present = req.Caller.Principal, req.Caller.Principal != ""
	case keyViaAlias:
		v, present = req.ViaAlias, req.ViaAlias != ""
	}
	if c.op == opNull {
		return present != c.wantNull
	}
	if !present {
		return c.ifExists || c.negate
	}
	return c.test(v)
}

// test applies the operator to one request value: for a positive operator,
// v matches one of the policy values; for a negated one, it matches none.
func (c *condition) test(v string) bool {
	m := false
	switch c.op {
	case opEquals:
		for _, x := range c.values {
			if v == x {
				m = true
				break
			}
		}
	case opEqualsFold:
		for _, x := range c.values {
			if strings.EqualFold(v, x) {
				m = true
				break
			}
		}
	case opLike:
		m = matchAny(c.pats, v)
	}
	return m != c.negate
}

// parseOperator splits a condition operator such as
// "ForAnyValue:StringLikeIfExists" into its parts.
func parseOperator(name string) (c condition, err string) {
	rest := name
	switch {
	case asciiHasPrefixFold(rest, "foranyvalue:"):
		c.set, rest = setAny, rest[len("foranyvalue:"):]
	case asciiHasPrefixFold(rest, "forallvalues:"):
		c.set, rest = setAll, rest[len("forallvalues:"):]
	}
	if len(rest) > len("IfExists") && asciiHasPrefixFold(rest[len(rest)-len("IfExists"):], "ifexists") {
		c.ifExists, rest = true, rest[:len(rest)-len("IfExists")]
	}
	switch strings.ToLower(rest) {
	case "stringequals":
		c.op = opEquals
	case "stringnotequals":
		c.op, c.negate = opEquals, true
	case "stringequalsignorecase":
		c.op = opEqualsFold
	case "stringnotequalsignorecase":
		c.op, c.negate = opEqualsFold, true
	case "stringlike":
		c.op = opLike
	case "stringnotlike":
		c.op, c.negate = opLike, true
	case "null":
		c.op = opNull
		if c.set != setNone || c.ifExists {
			return c, "Null takes no ForAnyValue:/ForAllValues: qualifier and no IfExists suffix"
		}
	case "numericequals", "numericnotequals", "numericlessthan", "numericlessthanequals",
		"numericgreaterthan", "numericgreaterthanequals", "dateequals", "datenotequals",
		"datelessthan", "datelessthanequals", "dategreaterthan", "dategreaterthanequals",
		"bool", "binaryequals", "ipaddress", "notipaddress", "arnequals", "arnlike",
		"arnnotequals", "arnnotlike":
		return c, "condition operator " + quote(name) + " is not supported: Trent's condition keys are strings; use a String operator"
	default:
		return c, "unknown condition operator " + quote(name) + " (supported: StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike, StringNotLike, Null; with an optional IfExists suffix and ForAnyValue:/ForAllValues: prefix)"
	}
	return c, ""
}

// parseCondKey recognises a condition key name.
func parseCondKey(name string) (k condKey, ctxKey string, err string) {
	if asciiHasPrefixFold(name, contextKeyPrefix) {
		ctxKey = name[len(contextKeyPrefix):]
		if ctxKey == "" {
			return 0, "", "kms:EncryptionContext: needs a context key after the colon (kms:EncryptionContext:<key>)"
		}
		if hasWildcard(ctxKey) {
			return 0, "", "wildcards are not supported in condition key names; to match context keys by pattern use ForAnyValue:StringLike or ForAllValues:StringLike on kms:EncryptionContextKeys"
		}
		return keyContextValue, ctxKey, ""
	}
	switch strings.ToLower(name) {
	case "kms:encryptioncontextkeys":
		return keyContextKeys, "", ""
	case "kms:callerprincipal":
		return keyCallerPrincipal, "", ""
	case "kms:viaalias", "kms:requestalias":
		return keyViaAlias, "", ""
	}
	return 0, "", "unknown condition key " + quote(name) + " (supported: kms:EncryptionContext:<key>, kms:EncryptionContextKeys, kms:CallerPrincipal, kms:ViaAlias or its AWS name kms:RequestAlias)"
}

// compileConditions turns a Condition element into conditions, all of which
// must hold (AND across operators and keys; OR across the values of a key).
func compileConditions(n *jnode, path string) ([]condition, *ParseError) {
	if n.kind != jObject {
		return nil, perr(path, "must be an object mapping condition operators to {\"key\": value} objects, got "+n.describe())
	}
	var conds []condition
	for i, opName := range n.keys {
		opPath := join(path, opName)
		proto, msg := parseOperator(opName)
		if msg != "" {
			return nil, perr(opPath, msg)
		}
		body := n.kids[i]
		if body.kind != jObject {
			return nil, perr(opPath, "must be an object mapping condition keys to a string or an array of strings, got "+body.describe())
		}
		if len(body.keys) == 0 {
			return nil, perr(opPath, "names no condition key")
		}
		for j, keyName := range body.keys {
			kPath := join(opPath, keyName)
			c := proto
			var ckMsg string
			c.key, c.ctxKey, ckMsg = parseCondKey(keyName)
			if ckMsg != "" {
				return nil, perr(kPath, ckMsg)
			}
			if c.op != opNull {
				switch {
				case c.key == keyContextKeys && c.set == setNone:
					return nil, perr(kPath, "kms:EncryptionContextKeys is multi-valued: qualify the operator with ForAnyValue: or ForAllValues: (for example ForAllValues:"+opName+")")
				case c.key != keyContextKeys && c.set != setNone:
					return nil, perr(kPath, "ForAnyValue:/ForAllValues: apply only to the multi-valued key kms:EncryptionContextKeys; "+keyName+" is single-valued")
				}
			}
			if err := c.setValues(body.kids[j], kPath, keyName); err != nil {
				return nil, err
			}
			conds = append(conds, c)
		}
	}
	return conds, nil
}

func (c *condition) setValues(n *jnode, path, keyName string) *ParseError {
	if c.op == opNull {
		var s string
		switch n.kind {
		case jBool:
			s = n.str
		case jString:
			s = strings.ToLower(n.str)
		}
		switch s {
		case "true":
			c.wantNull = true
		case "false":
			c.wantNull = false
		default:
			return perr(path, "Null takes \"true\" (the key must be absent) or \"false\" (it must be present), got "+n.describe())
		}
		return nil
	}
	vals, err := stringList(n, path, "condition value")
	if err != nil {
		return err
	}
	for i, v := range vals {
		vPath := path
		if n.kind == jArray {
			vPath = index(path, i)
		}
		if strings.Contains(v, "${") {
			return perr(vPath, "policy variables (${...}) are not supported")
		}
		if c.key == keyViaAlias && c.op != opLike && !asciiHasPrefixFold(v, "alias/") {
			return perr(vPath, "an alias name starts with \"alias/\", got "+quote(v))
		}
		if c.key == keyViaAlias && c.op == opLike && !asciiHasPrefixFold(v, "alias/") && !strings.HasPrefix(v, "*") && !strings.HasPrefix(v, "?") {
			return perr(vPath, "an alias name pattern starts with \"alias/\" (or a wildcard), got "+quote(v))
		}
	}
	c.values = vals
	if c.op == opLike {
		c.pats = make([]pattern, len(vals))
		for i, v := range vals {
			c.pats[i] = compilePattern(v, false)
		}
	}
	return nil
}

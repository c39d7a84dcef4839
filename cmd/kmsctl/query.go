package main

import (
	"strconv"
	"strings"
)

// query is the subset of the AWS CLI's JMESPath --query that scripts use to
// pull out values: dotted field names, list indexes and list projections,
// e.g. KeyMetadata.Arn, Keys[0].KeyId, Aliases[].AliasName. Anything else is
// refused up front rather than answered wrongly.
type query []queryStep

type queryStep struct {
	field   string // set for a field step
	index   int    // for an index step
	isIndex bool
	project bool // [] or [*]: apply the rest to each element
	flatten bool // [] also splices nested lists, as JMESPath does
}

func parseQuery(text string) (query, error) {
	if text == "" {
		return nil, nil
	}
	bad := func() (query, error) {
		return nil, usagef("--query: unsupported expression %q (kmsctl supports field paths such as KeyMetadata.KeyId, Keys[0].KeyId and Aliases[].AliasName)", text)
	}
	var q query
	for seg := range strings.SplitSeq(text, ".") {
		name, brackets := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name, brackets = seg[:i], seg[i:]
		}
		if !isIdentifier(name) {
			return bad()
		}
		q = append(q, queryStep{field: name})
		for brackets != "" {
			end := strings.IndexByte(brackets, ']')
			if brackets[0] != '[' || end < 0 {
				return bad()
			}
			inner := brackets[1:end]
			brackets = brackets[end+1:]
			switch inner {
			case "":
				q = append(q, queryStep{project: true, flatten: true})
			case "*":
				q = append(q, queryStep{project: true})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil {
					return bad()
				}
				q = append(q, queryStep{index: n, isIndex: true})
			}
		}
	}
	return q, nil
}

func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// eval applies the query to an output tree. Missing fields give nil (null),
// and a projection drops elements that give nil, as JMESPath does.
func (q query) eval(v any) any {
	for i, s := range q {
		switch {
		case s.project:
			list, ok := v.([]any)
			if !ok {
				return nil
			}
			if s.flatten {
				var flat []any
				for _, e := range list {
					if inner, ok := e.([]any); ok {
						flat = append(flat, inner...)
					} else {
						flat = append(flat, e)
					}
				}
				list = flat
			}
			out := []any{}
			for _, e := range list {
				if r := q[i+1:].eval(e); r != nil {
					out = append(out, r)
				}
			}
			return out
		case s.isIndex:
			list, ok := v.([]any)
			n := s.index
			if n < 0 {
				n += len(list)
			}
			if !ok || n < 0 || n >= len(list) {
				return nil
			}
			v = list[n]
		default:
			obj, ok := v.(jsonObject)
			if !ok {
				return nil
			}
			v, _ = obj.get(s.field)
		}
	}
	return v
}

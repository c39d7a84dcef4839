package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Output goes through a generic tree (jsonObject, []any, string,
// json.Number, bool, nil) so that --query and --output text work the same
// for every command. Objects keep the field order of the shape structs, so
// a queried sub-object prints in the same order as the full output.

type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

func (o jsonObject) get(key string) (any, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

// printResult writes v (a shape struct, or nil for an empty answer) in the
// requested format. An empty answer prints nothing, as with aws.
func printResult(w io.Writer, v any, format string, q query) error {
	if v == nil {
		return nil
	}
	tree, err := toTree(v)
	if err != nil {
		return err
	}
	tree = q.eval(tree)
	var b strings.Builder
	if format == "text" {
		writeText(&b, tree, "", nil)
	} else {
		writeJSON(&b, tree, "")
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func toTree(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers exactly as encoding/json wrote them
	return decodeTree(dec)
}

func decodeTree(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := jsonObject{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			value, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, jsonMember{key.(string), value})
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			value, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, value)
		}
		_, err := dec.Token() // ']'
		return list, err
	}
	return tok, nil
}

// writeJSON indents by four spaces and leaves <, > and & alone, matching
// the AWS CLI's json.dumps(indent=4).
func writeJSON(b *strings.Builder, v any, indent string) {
	inner := indent + "    "
	switch v := v.(type) {
	case jsonObject:
		if len(v) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, m := range v {
			b.WriteString(inner)
			writeJSONString(b, m.key)
			b.WriteString(": ")
			writeJSON(b, m.value, inner)
			if i < len(v)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "}")
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range v {
			b.WriteString(inner)
			writeJSON(b, e, inner)
			if i < len(v)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "]")
	case string:
		writeJSONString(b, v)
	case json.Number:
		b.WriteString(string(v))
	case bool:
		fmt.Fprint(b, v)
	default:
		b.WriteString("null")
	}
}

func writeJSONString(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeText follows the AWS CLI's text format (awscli/text.py): the scalar
// fields of an object go on one tab-separated line in key order, prefixed
// by the upper-cased name of the field holding the object; nested lists and
// objects follow on their own lines. A lone scalar prints raw, which is what
// makes "--query Plaintext --output text | base64 -d" work.
func writeText(b *strings.Builder, v any, identifier string, scalarKeys []string) {
	switch v := v.(type) {
	case jsonObject:
		writeTextObject(b, v, identifier, scalarKeys)
	case []any:
		writeTextList(b, v, identifier)
	default:
		b.WriteString(textScalar(v) + "\n")
	}
}

func writeTextObject(b *strings.Builder, obj jsonObject, identifier string, scalarKeys []string) {
	var scalars []string
	var nested []jsonMember
	keys := sortedKeys(obj)
	if scalarKeys == nil {
		for _, k := range keys {
			v, _ := obj.get(k)
			if isScalar(v) {
				scalars = append(scalars, textScalar(v))
			} else {
				nested = append(nested, jsonMember{k, v})
			}
		}
	} else {
		// An element of a list of objects: one column per scalar key seen
		// in any element, so the columns line up.
		for _, k := range scalarKeys {
			v, ok := obj.get(k)
			if !ok {
				v = ""
			}
			scalars = append(scalars, textScalar(v))
		}
		for _, k := range keys {
			if !slices.Contains(scalarKeys, k) {
				v, _ := obj.get(k)
				nested = append(nested, jsonMember{k, v})
			}
		}
	}
	if len(scalars) > 0 {
		if identifier != "" {
			scalars = append([]string{strings.ToUpper(identifier)}, scalars...)
		}
		b.WriteString(strings.Join(scalars, "\t") + "\n")
	}
	for _, m := range nested {
		writeText(b, m.value, m.key, nil)
	}
}

func writeTextList(b *strings.Builder, list []any, identifier string) {
	if len(list) == 0 {
		return
	}
	if slices.ContainsFunc(list, func(e any) bool { _, ok := e.(jsonObject); return ok }) {
		keys := scalarKeysOf(list)
		for _, e := range list {
			writeText(b, e, identifier, keys)
		}
		return
	}
	var scalars []string
	var nested []any
	for _, e := range list {
		if isScalar(e) {
			scalars = append(scalars, textScalar(e))
		} else {
			nested = append(nested, e)
		}
	}
	if len(scalars) > 0 {
		if identifier != "" {
			for _, s := range scalars {
				b.WriteString(strings.ToUpper(identifier) + "\t" + s + "\n")
			}
		} else {
			b.WriteString(strings.Join(scalars, "\t") + "\n")
		}
	}
	for _, e := range nested {
		writeText(b, e, identifier, nil)
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case jsonObject, []any:
		return false
	}
	return true
}

// textScalar prints like Python's str(), which the AWS CLI uses: True,
// False, None.
func textScalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	}
	return fmt.Sprint(v)
}

func sortedKeys(obj jsonObject) []string {
	keys := make([]string, len(obj))
	for i, m := range obj {
		keys[i] = m.key
	}
	slices.Sort(keys)
	return keys
}

func scalarKeysOf(list []any) []string {
	var keys []string
	for _, e := range list {
		obj, _ := e.(jsonObject)
		for _, m := range obj {
			if isScalar(m.value) && !slices.Contains(keys, m.key) {
				keys = append(keys, m.key)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

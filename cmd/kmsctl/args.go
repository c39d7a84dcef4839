package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trent-kms/trent/transport/kmspb"
)

// flagKind says how a flag's text becomes a value. Every value is converted
// before any request is sent, so a bad input never leaves half an operation
// done.
type flagKind int

const (
	kindString      flagKind = iota // one value, taken as written
	kindInt                         // one 32-bit integer
	kindBool                        // no value; --no-NAME sets it to false
	kindBlob                        // fileb://PATH (raw bytes), file://PATH or inline base64
	kindContext                     // k=v,k2=v2 or {"k":"v"}, inline or file://PATH
	kindTags                        // one or more TagKey=k,TagValue=v, or a JSON list
	kindList                        // one or more strings, or a JSON list
	kindText                        // one value, or file://PATH to read it from a file as is
	kindUint64                      // one unsigned 64-bit integer, such as a Raft index
	kindConstraints                 // grant constraints: AWS shorthand or JSON, inline or file://PATH
)

// multi reports whether the flag takes every following argument up to the
// next --flag, like the AWS CLI's shorthand lists.
func (k flagKind) multi() bool { return k == kindTags || k == kindList }

type flagSpec struct {
	name     string // without the leading "--"
	kind     flagKind
	required bool
	metavar  string // placeholder in usage text; derived from name if empty
	usage    string
}

func (s flagSpec) placeholder() string {
	if s.metavar != "" {
		return s.metavar
	}
	return strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// errHelp is returned by parseFlags when --help (or a bare "help") is given.
var errHelp = errors.New("help requested")

// parseFlags collects the raw text of each flag. It accepts "--flag value"
// and "--flag=value"; a value may not start with "--" unless given with "=",
// so a forgotten value is reported instead of swallowing the next flag.
func parseFlags(args []string, specs []flagSpec) (map[string][]string, error) {
	byName := make(map[string]flagSpec, len(specs))
	for _, s := range specs {
		byName[s.name] = s
	}
	raw := map[string][]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--help" || arg == "-h" || arg == "help" {
			return nil, errHelp
		}
		if !strings.HasPrefix(arg, "-") {
			return nil, usagef("unexpected argument %q", arg)
		}
		if !strings.HasPrefix(arg, "--") {
			return nil, usagef("unknown flag %s", arg)
		}
		name, value, inline := strings.Cut(arg[2:], "=")
		spec, ok := byName[name]
		negated := false
		if !ok {
			base, isNo := strings.CutPrefix(name, "no-")
			if spec, ok = byName[base]; !isNo || !ok || spec.kind != kindBool {
				return nil, usagef("unknown flag --%s", name)
			}
			negated = true
		}
		if _, seen := raw[spec.name]; seen && !spec.kind.multi() {
			return nil, usagef("--%s given more than once", spec.name)
		}
		switch {
		case spec.kind == kindBool:
			if negated && inline {
				return nil, usagef("--%s takes no value", name)
			}
			if negated {
				value = "false"
			} else if !inline {
				value = "true"
			}
			raw[spec.name] = []string{value}
			continue
		case !inline:
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return nil, usagef("--%s needs a value", name)
			}
			i++
			value = args[i]
		}
		raw[spec.name] = append(raw[spec.name], value)
		for spec.kind.multi() && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			i++
			raw[spec.name] = append(raw[spec.name], args[i])
		}
	}
	return raw, nil
}

// flagValues holds converted flag values by flag name; absent flags read as
// zero values, which the API treats as "not set".
type flagValues map[string]any

func (v flagValues) has(name string) bool          { _, ok := v[name]; return ok }
func (v flagValues) str(name string) string        { s, _ := v[name].(string); return s }
func (v flagValues) int32(name string) int32       { n, _ := v[name].(int32); return n }
func (v flagValues) uint64(name string) uint64     { n, _ := v[name].(uint64); return n }
func (v flagValues) bool(name string) bool         { b, _ := v[name].(bool); return b }
func (v flagValues) blob(name string) []byte       { b, _ := v[name].([]byte); return b }
func (v flagValues) list(name string) []string     { l, _ := v[name].([]string); return l }
func (v flagValues) tags(name string) []*kmspb.Tag { t, _ := v[name].([]*kmspb.Tag); return t }
func (v flagValues) context(name string) map[string]string {
	m, _ := v[name].(map[string]string)
	return m
}
func (v flagValues) constraints(name string) *kmspb.GrantConstraints {
	c, _ := v[name].(*kmspb.GrantConstraints)
	return c
}

// convertFlags checks required flags, then turns raw text into values.
// stdin is read for fileb://-.
func convertFlags(raw map[string][]string, specs []flagSpec, stdin io.Reader) (flagValues, error) {
	var missing []string
	for _, s := range specs {
		if _, ok := raw[s.name]; s.required && !ok {
			missing = append(missing, "--"+s.name)
		}
	}
	if len(missing) > 0 {
		return nil, usagef("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	vals := flagValues{}
	for _, s := range specs {
		texts, ok := raw[s.name]
		if !ok {
			continue
		}
		v, err := convertValue(s.kind, texts, stdin)
		if err != nil {
			return nil, usagef("--%s: %v", s.name, err)
		}
		vals[s.name] = v
	}
	return vals, nil
}

func convertValue(kind flagKind, texts []string, stdin io.Reader) (any, error) {
	text := texts[0]
	switch kind {
	case kindInt:
		n, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a 32-bit whole number", text)
		}
		return int32(n), nil
	case kindUint64:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number from 0 to %d", text, uint64(math.MaxUint64))
		}
		return n, nil
	case kindBool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", text)
		}
		return b, nil
	case kindBlob:
		return readBlob(text, stdin)
	case kindContext:
		return parseContext(text)
	case kindText:
		return readParamFile(text)
	case kindConstraints:
		return parseConstraints(text)
	case kindTags:
		var tags []*kmspb.Tag
		for _, t := range texts {
			more, err := parseTags(t)
			if err != nil {
				return nil, err
			}
			tags = append(tags, more...)
		}
		return tags, nil
	case kindList:
		var list []string
		for _, t := range texts {
			if !strings.HasPrefix(t, "[") {
				list = append(list, t)
				continue
			}
			var more []string
			if err := json.Unmarshal([]byte(t), &more); err != nil {
				return nil, fmt.Errorf("invalid JSON list of strings: %v", err)
			}
			list = append(list, more...)
		}
		return list, nil
	default:
		return text, nil
	}
}

// readBlob reads a binary input the way AWS CLI v2 does: fileb://PATH is the
// file's raw bytes, anything else (inline or from file://PATH) is base64.
// fileb://- reads standard input, so plaintext need not touch the disk.
func readBlob(text string, stdin io.Reader) ([]byte, error) {
	if path, ok := strings.CutPrefix(text, "fileb://"); ok {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(expandHome(path))
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %v", text, unwrapPathError(err))
		}
		return data, nil
	}
	s, err := readParamFile(text)
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not valid base64 (%v); give raw bytes as fileb://PATH", err)
	}
	return data, nil
}

// readParamFile returns the contents of file://PATH, or text itself.
func readParamFile(text string) (string, error) {
	path, ok := strings.CutPrefix(text, "file://")
	if !ok {
		return text, nil
	}
	data, err := os.ReadFile(expandHome(path))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", text, unwrapPathError(err))
	}
	return string(data), nil
}

// unwrapPathError drops the "open PATH:" prefix, as the message names the
// path already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

// parseContext reads an encryption context: k=v,k2=v2 (spaces around keys
// and values are dropped) or a JSON object, for keys or values that contain
// commas, "=" or significant spaces.
func parseContext(text string) (map[string]string, error) {
	text, err := readParamFile(text)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(text), "{") {
		var m map[string]string
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			return nil, fmt.Errorf("invalid JSON object of strings: %v", err)
		}
		return m, nil
	}
	m := map[string]string{}
	for pair := range strings.SplitSeq(text, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf(`%q is not KEY=VALUE (write {"key":"value"} JSON for values with commas)`, pair)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// parseTags reads one --tags argument: TagKey=k,TagValue=v, or a JSON list
// [{"TagKey":"k","TagValue":"v"}] (inline or file://PATH) as the AWS CLI
// also accepts.
func parseTags(text string) ([]*kmspb.Tag, error) {
	text, err := readParamFile(text)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(text), "[") {
		var list []struct{ TagKey, TagValue *string }
		if err := json.Unmarshal([]byte(text), &list); err != nil {
			return nil, fmt.Errorf("invalid JSON list of tags: %v", err)
		}
		var tags []*kmspb.Tag
		for _, t := range list {
			if t.TagKey == nil || t.TagValue == nil {
				return nil, errors.New("each JSON tag needs TagKey and TagValue")
			}
			tags = append(tags, &kmspb.Tag{TagKey: *t.TagKey, TagValue: *t.TagValue})
		}
		return tags, nil
	}
	var key, value *string
	for field := range strings.SplitSeq(text, ",") {
		name, v, _ := strings.Cut(field, "=")
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(name) {
		case "TagKey":
			key = &v
		case "TagValue":
			value = &v
		default:
			return nil, fmt.Errorf(`%q: want TagKey=KEY,TagValue=VALUE (write a JSON list for values with commas)`, text)
		}
	}
	if key == nil || value == nil {
		return nil, fmt.Errorf(`%q: want TagKey=KEY,TagValue=VALUE`, text)
	}
	return []*kmspb.Tag{{TagKey: *key, TagValue: *value}}, nil
}

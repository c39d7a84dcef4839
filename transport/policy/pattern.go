package policy

import (
	"strings"
	"unicode/utf8"
)

// patKind selects the matcher a pattern was compiled to at Parse, so the
// common shapes ("*", "literal", "prefix*", "*suffix") never run the general
// wildcard loop.
type patKind uint8

const (
	patAny    patKind = iota // "*"
	patExact                 // no wildcard
	patPrefix                // "lit*"
	patSuffix                // "*lit"
	patGlob                  // anything else
)

// pattern is a StringLike pattern: '*' matches any run of characters
// (including none), '?' exactly one character (one UTF-8 encoded rune).
// There is no escape: a literal '*' or '?' cannot be matched on its own.
//
// A folding pattern (used for action names, which AWS compares without
// regard to case) is stored lower-cased and compared with ASCII case folding.
type pattern struct {
	kind patKind
	fold bool
	lit  string // literal part for patExact / patPrefix / patSuffix
	raw  string // whole pattern for patGlob (lower-cased when fold)
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

func compilePattern(s string, fold bool) pattern {
	if fold {
		s = asciiLower(s)
	}
	p := pattern{fold: fold, raw: s}
	switch {
	case s == "*":
		p.kind = patAny
	case !hasWildcard(s):
		p.kind, p.lit = patExact, s
	case strings.HasSuffix(s, "*") && !hasWildcard(s[:len(s)-1]):
		p.kind, p.lit = patPrefix, s[:len(s)-1]
	case strings.HasPrefix(s, "*") && !hasWildcard(s[1:]):
		p.kind, p.lit = patSuffix, s[1:]
	default:
		p.kind = patGlob
	}
	return p
}

func (p *pattern) match(s string) bool {
	switch p.kind {
	case patAny:
		return true
	case patExact:
		if p.fold {
			return len(s) == len(p.lit) && asciiHasPrefixFold(s, p.lit)
		}
		return s == p.lit
	case patPrefix:
		if p.fold {
			return asciiHasPrefixFold(s, p.lit)
		}
		return strings.HasPrefix(s, p.lit)
	case patSuffix:
		if p.fold {
			return len(s) >= len(p.lit) && asciiHasPrefixFold(s[len(s)-len(p.lit):], p.lit)
		}
		return strings.HasSuffix(s, p.lit)
	default:
		return globMatch(p.raw, s, p.fold)
	}
}

// globMatch reports whether s matches the wildcard pattern pat. It runs in
// O(len(pat)·len(s)) time in the worst case (one backtrack point, the last
// '*'), never exponentially. When fold is set pat must be lower-case and s is
// compared with ASCII case folding.
func globMatch(pat, s string, fold bool) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1 // position after the last '*', and where s resumes
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starPx, starSx = px+1, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, w := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += w
					continue
				}
			default:
				if sx < len(s) {
					b := s[sx]
					if fold {
						b = asciiLowerByte(b)
					}
					if b == c {
						px++
						sx++
						continue
					}
				}
			}
		}
		// Mismatch: let the last '*' swallow one more character.
		if starPx >= 0 && starSx < len(s) {
			_, w := utf8.DecodeRuneInString(s[starSx:])
			starSx += w
			px, sx = starPx, starSx
			continue
		}
		return false
	}
	return true
}

func asciiLowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// asciiLower lower-cases ASCII letters only, so byte offsets never change.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = asciiLowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// asciiHasPrefixFold reports whether s starts with lower, a lower-case
// string, comparing ASCII letters without regard to case.
func asciiHasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		if asciiLowerByte(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if asciiLowerByte(a[i]) != asciiLowerByte(b[i]) {
			return false
		}
	}
	return true
}

func validUTF8(s string) bool { return utf8.ValidString(s) }

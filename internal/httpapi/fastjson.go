package httpapi

import "unicode/utf8"

// The authorize body is tiny and flat ({"action","tool","agent"}), and its
// decode is the largest cost of the hot path that this package owns. The
// fast path below accepts only the plain form (string or null values, no
// escapes, exact key names) without reflection; anything else falls back to
// the strict encoding/json decoder, which gives the same result or the
// precise error. FuzzAuthorizeFastPathAgreesWithEncodingJSON pins them.

// decodeAuthorize fills dst from the body b.
func decodeAuthorize(b []byte, dst *authorizeBody) error {
	if fastAuthorize(b, dst) {
		return nil
	}
	*dst = authorizeBody{}
	return decodeObject(b, dst, "")
}

// fastAuthorize parses the plain form; false means "use the slow path".
func fastAuthorize(b []byte, dst *authorizeBody) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		var (
			val    []byte
			isNull bool
		)
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			isNull, i = true, i+4
		} else if val, i, ok = plainString(b, i); !ok {
			return false
		}
		switch string(key) {
		case "action":
			if !isNull {
				dst.Action = string(val)
			}
		case "agent":
			if !isNull {
				dst.Agent = string(val)
			}
		case "tool":
			if isNull {
				dst.Tool = nil
			} else {
				t := string(val)
				dst.Tool = &t
			}
		default:
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// plainString reads a JSON string at b[i] that needs no unescaping and is
// valid UTF-8; it returns the bytes between the quotes.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, i, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, i, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

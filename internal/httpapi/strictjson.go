package httpapi

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Request bodies are decoded with github.com/go-json-experiment/json, the
// prototype of encoding/json/v2 (the standard library's copy needs
// GOEXPERIMENT=jsonv2 in this toolchain). encoding/json (v1) is lenient in
// ways that let two readers of one body disagree: it matches keys
// case-insensitively with the last one winning, keeps the last of duplicate
// keys and turns invalid UTF-8 and lone surrogate escapes into U+FFFD. A
// gateway or an audit filter that reads the same body another way would see
// another request than the one decided. The strict rules:
//
//   - keys match struct fields exactly (case-sensitive); any other key is an
//     unknown field and refused;
//   - a key may appear once per object, at every depth, also inside values
//     kept raw for a second decode (tool_policy);
//   - the body is valid UTF-8 and no \u escape is a lone surrogate;
//   - exactly one JSON value, an object, and nothing after it.
//
// strictOptions states each rule even where it is the library's default, so
// that a change of default cannot loosen them.
var strictOptions = json.JoinOptions(
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(true),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// strictUnmarshal decodes the single JSON value b into dst under the strict
// rules; its errors are classified by strictError.
func strictUnmarshal(b []byte, dst any) error {
	return json.Unmarshal(b, dst, strictOptions)
}

// strictError classifies a strictUnmarshal failure of b into the API's
// error vocabulary; prefix names the enclosing field ("tool_policy") for a
// nested document. Every answer is a 400 naming the field or key at fault.
func strictError(b []byte, err error, prefix string) *apiError {
	var (
		syn *jsontext.SyntacticError
		sem *json.SemanticError
	)
	switch {
	case errors.As(err, &syn):
		return syntacticError(b, syn, prefix)
	case errors.As(err, &sem):
		return semanticError(sem, prefix)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errTruncated
	}
	return badRequest("invalid_json", prefix, "the request body is not valid JSON")
}

var errTruncated = badRequest("invalid_json", "", "the request body ends before the JSON object does")

func syntacticError(b []byte, e *jsontext.SyntacticError, prefix string) *apiError {
	field := pointerField(prefix, e.JSONPointer)
	switch {
	case errors.Is(e.Err, jsontext.ErrDuplicateName):
		key := clip(e.JSONPointer.LastToken())
		if parent := pointerField(prefix, e.JSONPointer.Parent()); parent != "" {
			return badRequest("invalid_json", field, "duplicate key %q in %q: a key may appear only once in an object", key, parent)
		}
		return badRequest("invalid_json", field, "duplicate key %q: a key may appear only once in an object", key)
	case errors.Is(e.Err, io.ErrUnexpectedEOF):
		return errTruncated
	case prefix == "" && afterFirstValue(b, e.ByteOffset):
		return errTrailing
	}
	if i := invalidUTF8At(b); i >= 0 && int64(i) <= e.ByteOffset {
		if field != "" {
			return badRequest("invalid_json", field, "field %q is not valid UTF-8 (at byte %d)", field, i)
		}
		return badRequest("invalid_json", "", "the request body is not valid UTF-8 (at byte %d)", i)
	}
	// The library has no exported sentinel for a lone surrogate escape; its
	// message is pinned by TestStrictDecodeRefusals.
	if strings.Contains(e.Err.Error(), "surrogate") {
		where := "the request body"
		if field != "" {
			where = strconv.Quote(field)
		}
		return badRequest("invalid_json", field, "%s has a \\u escape of a lone UTF-16 surrogate, which is not a character (at byte %d)", where, e.ByteOffset)
	}
	if field != "" {
		return badRequest("invalid_json", field, "the request body is not valid JSON (at byte %d, in %q)", e.ByteOffset, field)
	}
	return badRequest("invalid_json", "", "the request body is not valid JSON (at byte %d)", e.ByteOffset)
}

func semanticError(e *json.SemanticError, prefix string) *apiError {
	field := pointerField(prefix, e.JSONPointer)
	if errors.Is(e.Err, json.ErrUnknownName) {
		name := e.JSONPointer.LastToken()
		if near := foldMatch(e.GoType, name); near != "" {
			return badRequest("unknown_field", field, "unknown field %q (field names are case-sensitive: did you mean %q?)", field, near)
		}
		return badRequest("unknown_field", field, "unknown field %q", field)
	}
	if field == "" {
		return errNotObject
	}
	want := "of another type"
	if t := e.GoType; t != nil {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		want = jsonTypeName(t.Kind().String())
	}
	got := kindName(e.JSONKind)
	if e.JSONKind == '0' && len(e.JSONValue) > 0 {
		got = clip(string(e.JSONValue))
		if errors.Is(e.Err, strconv.ErrRange) {
			return badRequest("invalid_field", field, "field %q must be %s, and %s is out of range", field, want, got)
		}
	}
	return badRequest("invalid_field", field, "field %q must be %s, not %s", field, want, got)
}

// pointerField renders a JSON pointer as a field path: "tool_policy.mode",
// "capabilities[0]", under prefix.
func pointerField(prefix string, p jsontext.Pointer) string {
	var sb strings.Builder
	sb.WriteString(prefix)
	for tok := range p.Tokens() {
		if sb.Len() > 0 && isDigits(tok) {
			sb.WriteString("[" + tok + "]")
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(tok)
	}
	return clip(sb.String())
}

// foldMatch returns the JSON name of a field of struct type t that equals
// name case-insensitively, for a helpful refusal; "" if none.
func foldMatch(t reflect.Type, name string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != "-" && strings.EqualFold(tag, name) {
			return tag
		}
	}
	return ""
}

// kindName names a JSON kind as a client thinks of it.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "another type"
}

// afterFirstValue reports whether b starts with one complete JSON value
// that ends at or before off: an error at off is trailing data.
func afterFirstValue(b []byte, off int64) bool {
	d := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if err := d.SkipValue(); err != nil {
		return false
	}
	return off >= d.InputOffset()
}

// invalidUTF8At returns the offset of the first byte of b that is not
// valid UTF-8, -1 if none.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// maxNamedLen bounds a client's key or value quoted back in a message.
const maxNamedLen = 128

// clip shortens s to at most maxNamedLen bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxNamedLen {
		return s
	}
	i := maxNamedLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

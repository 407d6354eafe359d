package httpapi

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentauthz/agentauthz/internal/model"
)

// TestStrictDecodeRefusals pins every rule of strictjson.go at the decoder:
// code, field and the words of the message that name the culprit.
func TestStrictDecodeRefusals(t *testing.T) {
	cases := []struct {
		name   string
		dst    func() any
		prefix string
		body   string
		code   string
		field  string
		msg    string // a substring of the message
	}{
		// exact, case-sensitive keys
		{name: "a key differing in case is unknown", dst: newAuthorize, body: `{"action":"read_jobs","ACTION":"manage_flows"}`,
			code: "unknown_field", field: "ACTION", msg: `did you mean "action"`},
		{name: "a key differing in case alone is unknown", dst: newAuthorize, body: `{"Action":"chat"}`, code: "unknown_field", field: "Action"},
		{name: "an unknown key is unknown", dst: newAuthorize, body: `{"action":"chat","why":1}`, code: "unknown_field", field: "why", msg: `unknown field "why"`},
		{name: "a nested key differing in case is unknown", dst: newToolPolicy, prefix: "tool_policy", body: `{"MODE":"allow"}`,
			code: "unknown_field", field: "tool_policy.MODE", msg: `did you mean "mode"`},
		{name: "a long unknown key is clipped in the message", dst: newAuthorize, body: `{"` + strings.Repeat("k", 500) + `":1}`, code: "unknown_field", msg: "…"},
		// duplicate keys
		{name: "a duplicate key is refused", dst: newAuthorize, body: `{"action":"read_jobs","action":"manage_flows"}`,
			code: "invalid_json", field: "action", msg: `duplicate key "action"`},
		{name: "a duplicate written with an escape is refused", dst: newAuthorize, body: `{"action":"a","\u0061ction":"b"}`,
			code: "invalid_json", field: "action", msg: `duplicate key "action"`},
		{name: "a duplicate null is refused", dst: newAuthorize, body: `{"tool":"x","tool":null}`, code: "invalid_json", field: "tool"},
		{name: "a duplicate inside a raw nested object is refused", dst: newCreateAgent, body: `{"slug":"b","tool_policy":{"mode":"allow","mode":"deny"}}`,
			code: "invalid_json", field: "tool_policy.mode", msg: `duplicate key "mode" in "tool_policy"`},
		{name: "a duplicate deep inside a raw nested value is refused", dst: newCreateAgent, body: `{"tool_policy":{"tools":[{"a":1,"a":2}]}}`,
			code: "invalid_json", field: "tool_policy.tools[0].a", msg: `duplicate key "a"`},
		{name: "a duplicate in a nested decode is refused", dst: newToolPolicy, prefix: "tool_policy", body: `{"tools":[],"tools":["x"]}`,
			code: "invalid_json", field: "tool_policy.tools", msg: `duplicate key "tools" in "tool_policy"`},
		// UTF-8
		{name: "invalid UTF-8 in a value is refused", dst: newCreateToken, body: "{\"label\":\"bad\xff\"}", code: "invalid_json", field: "label", msg: "not valid UTF-8 (at byte 13)"},
		{name: "invalid UTF-8 in a key is refused", dst: newCreateToken, body: "{\"lab\xc3el\":\"x\"}", code: "invalid_json", msg: "not valid UTF-8 (at byte 5)"},
		{name: "an overlong encoding is refused", dst: newCreateToken, body: "{\"label\":\"\xc0\xaf\"}", code: "invalid_json", msg: "not valid UTF-8"},
		{name: "an encoded surrogate is refused", dst: newCreateToken, body: "{\"label\":\"\xed\xa0\x80\"}", code: "invalid_json", msg: "not valid UTF-8"},
		{name: "a lone high surrogate escape is refused", dst: newCreateToken, body: `{"label":"\ud800"}`, code: "invalid_json", field: "label", msg: "lone UTF-16 surrogate"},
		{name: "a lone low surrogate escape is refused", dst: newCreateToken, body: `{"label":"x\udc00y"}`, code: "invalid_json", field: "label", msg: "lone UTF-16 surrogate"},
		{name: "a reversed surrogate pair is refused", dst: newCreateToken, body: `{"label":"\udc00\ud800"}`, code: "invalid_json", field: "label", msg: "lone UTF-16 surrogate"},
		{name: "a lone surrogate in a key is refused", dst: newCreateToken, body: `{"\ud800":1}`, code: "invalid_json", msg: "lone UTF-16 surrogate"},
		// shape
		{name: "an empty body", dst: newCreateToken, body: ``, code: "invalid_json", msg: "empty"},
		{name: "an array body", dst: newCreateToken, body: `[]`, code: "invalid_json", msg: "must be a JSON object"},
		{name: "a null body", dst: newCreateToken, body: `null`, code: "invalid_json", msg: "must be a JSON object"},
		{name: "garbage", dst: newCreateToken, body: `nope`, code: "invalid_json", msg: "not valid JSON"},
		{name: "a truncated object", dst: newCreateToken, body: `{"label":`, code: "invalid_json", msg: "ends before"},
		{name: "a second object", dst: newCreateToken, body: `{"label":"a"} {}`, code: "invalid_json", msg: "data after the JSON object"},
		{name: "trailing garbage", dst: newCreateToken, body: `{"label":"a"}x`, code: "invalid_json", msg: "data after the JSON object"},
		{name: "trailing invalid UTF-8", dst: newCreateToken, body: "{\"label\":\"a\"}\xff", code: "invalid_json", msg: "data after the JSON object"},
		{name: "a trailing comma", dst: newCreateToken, body: `{"label":"a",}`, code: "invalid_json", msg: "not valid JSON (at byte"},
		{name: "a nested value that is not an object", dst: newToolPolicy, prefix: "tool_policy", body: `"allow"`, code: "invalid_field", field: "tool_policy"},
		// types
		{name: "a number for a string", dst: newAuthorize, body: `{"action":5}`, code: "invalid_field", field: "action", msg: `field "action" must be a string, not a number`},
		{name: "a string for an integer", dst: newCreateToken, body: `{"expires_in":"10"}`, code: "invalid_field", field: "expires_in", msg: "must be an integer, not a string"},
		{name: "a fraction for an integer", dst: newCreateToken, body: `{"expires_in":1.5}`, code: "invalid_field", field: "expires_in", msg: "not 1.5"},
		{name: "an exponent for an integer", dst: newCreateToken, body: `{"expires_in":1e3}`, code: "invalid_field", field: "expires_in"},
		{name: "an integer out of range", dst: newCreateToken, body: `{"expires_in":99999999999999999999}`, code: "invalid_field", field: "expires_in", msg: "out of range"},
		{name: "a string for an array", dst: newCreateToken, body: `{"capabilities":"read"}`, code: "invalid_field", field: "capabilities", msg: "must be an array, not a string"},
		{name: "a number in a string array", dst: newCreateToken, body: `{"capabilities":[1]}`, code: "invalid_field", field: "capabilities[0]"},
		{name: "a wrong nested type", dst: newToolPolicy, prefix: "tool_policy", body: `{"tools":"web"}`, code: "invalid_field", field: "tool_policy.tools"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := decodeObject([]byte(c.body), c.dst(), c.prefix)
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("decode %q: got %v, want an apiError", c.body, err)
			}
			if ae.Status != 400 || ae.Code != c.code {
				t.Fatalf("decode %q: got %d %s (%s), want 400 %s", c.body, ae.Status, ae.Code, ae.Message, c.code)
			}
			if c.field != "" && ae.Field != c.field {
				t.Errorf("field = %q, want %q (%s)", ae.Field, c.field, ae.Message)
			}
			if !strings.Contains(ae.Message, c.msg) {
				t.Errorf("message %q does not contain %q", ae.Message, c.msg)
			}
		})
	}
}

// TestStrictDecodeKeepsAbsentNullAndValues: what the strict decoder accepts
// decodes as before, and absent stays distinct from null.
func TestStrictDecodeKeepsAbsentNullAndValues(t *testing.T) {
	var absent, null, set updateAgentBody
	for body, dst := range map[string]*updateAgentBody{
		`{"name":"n"}`:                    &absent,
		`{"tool_policy": null }`:          &null,
		`{"tool_policy":{"mode":"deny"}}`: &set,
	} {
		if err := decodeObject([]byte(body), dst, ""); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	if absent.ToolPolicy != nil || *absent.Name != "n" {
		t.Errorf("absent tool_policy decoded as %q", absent.ToolPolicy)
	}
	if _, isNull, _ := toolPolicyBody(null.ToolPolicy); !isNull {
		t.Errorf("null tool_policy decoded as %q, not null", null.ToolPolicy)
	}
	if tp, isNull, err := toolPolicyBody(set.ToolPolicy); err != nil || isNull || tp.Mode != "deny" {
		t.Errorf("tool_policy object decoded as %+v %v %v", tp, isNull, err)
	}
	var a authorizeBody
	if err := decodeObject([]byte(`{"action":"\u00e9\ud83d\ude00","tool":null}`), &a, ""); err != nil || a.Action != "é😀" || a.Tool != nil {
		t.Errorf("escapes and a surrogate pair: %+v %v", a, err)
	}
}

// strictTargets are the request body types of this package.
var strictTargets = []struct {
	name   string
	prefix string
	new    func() any
}{
	{"authorize", "", newAuthorize},
	{"create token", "", newCreateToken},
	{"create agent", "", newCreateAgent},
	{"update agent", "", func() any { return new(updateAgentBody) }},
	{"put grant", "", func() any { return new(putGrantBody) }},
	{"create user", "", func() any { return new(createUserBody) }},
	{"update user", "", func() any { return new(updateUserBody) }},
	{"tool policy", "tool_policy", newToolPolicy},
}

func newAuthorize() any   { return new(authorizeBody) }
func newCreateToken() any { return new(createTokenBody) }
func newCreateAgent() any { return new(createAgentBody) }
func newToolPolicy() any  { return new(model.ToolPolicy) }

var strictCorpus = []string{
	`{"action":"chat"}`,
	`{"action":"use_tools","tool":"web_search","agent":"alpha"}`,
	` { "action" : "chat" , "tool" : null } `,
	`{"tool":"a","tool":"b","action":"x"}`,
	`{"action":"read_jobs","ACTION":"manage_flows"}`,
	`{"action":"é漢"}`,
	`{"action":"\ud83d\ude00"}`,
	`{"action":"\ud800"}`,
	`{"action":"\udc00\ud800"}`,
	`{}`,
	`{"action":null}`,
	`{"action":"a\"b"}`,
	`{"Action":"chat"}`,
	`{"action":"chat","extra":1}`,
	`{"action":5}`,
	`{"action":"chat"}x`,
	`{"action":"chat"} {}`,
	`{"action":"chat",}`,
	`{"action":"bad` + "\xff" + `"}`,
	`{"act` + "\xff" + `ion":"x"}`,
	`{"action":"tab` + "\t" + `"}`,
	`{"label":"x","capabilities":["a","b"],"expires_in":60}`,
	`{"capabilities":[],"expires_in":-0}`,
	`{"capabilities":null,"expires_in":1e2}`,
	`{"slug":"beta","owner":"alice","tool_policy":{"mode":"allow","tools":["web"]}}`,
	`{"tool_policy":null,"name":"n","status":"active"}`,
	`{"tool_policy":{"mode":"allow","mode":"deny"}}`,
	`{"mode":"allow","tools":[]}`,
	`{"login":"carol","roles":["editor"],"roles":["administrator"]}`,
	`{"role":"viewer"}`,
	`[]`, `null`, ``, `{`, `{"action"`, `{"action":`, `{"action":nul}`, `{"action":"chat" "tool":"x"}`,
}

func TestStrictDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range strictCorpus {
		checkStrictDecode(t, []byte(in))
	}
}

// FuzzStrictDecode: the strict decoder never panics, refuses only with a
// 400, and whatever it accepts is valid UTF-8 with no duplicate key, no
// lone surrogate escape and only exact field names, and decodes under
// encoding/json to the same value. Conversely, whatever encoding/json
// accepts that meets those rules, the strict decoder accepts too.
func FuzzStrictDecode(f *testing.F) {
	for _, in := range strictCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(checkStrictDecode)
}

func checkStrictDecode(t *testing.T, b []byte) {
	t.Helper()
	for _, target := range strictTargets {
		got := target.new()
		err := decodeObject(b, got, target.prefix)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code == "" || ae.Message == "" {
				t.Fatalf("%s %q: refused with %#v, want a 400 apiError", target.name, b, err)
			}
		}
		want := target.new()
		v1Err := decodeV1(b, want)
		clean := v1Err == nil && utf8.Valid(b) && !hasLoneSurrogate(b) && !hasDuplicateKey(b) && exactKeys(b, reflect.TypeOf(want))
		switch {
		case err == nil && v1Err != nil:
			t.Fatalf("%s %q: strict accepted, encoding/json refused: %v", target.name, b, v1Err)
		case err == nil && !clean:
			t.Fatalf("%s %q: strict accepted a body that breaks the strict rules", target.name, b)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("%s %q: strict %+v, encoding/json %+v", target.name, b, got, want)
		case err != nil && clean:
			t.Fatalf("%s %q: encoding/json accepted a clean body, strict refused: %v", target.name, b, err)
		}
	}
}

// decodeV1 is the previous decoder: encoding/json with unknown fields
// refused and nothing after the value.
func decodeV1(b []byte, dst any) error {
	if firstByte(b) != '{' {
		return errNotObject
	}
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailing
	}
	return nil
}

// hasDuplicateKey scans valid JSON with encoding/json's tokenizer, which
// shares no code with the strict decoder, for a key repeated in an object.
func hasDuplicateKey(b []byte) bool {
	type frame struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	var stack []*frame
	// valueDone records, after a whole value, that the enclosing object
	// expects a key next.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			if k, ok := tok.(string); ok {
				if stack[n-1].keys[k] {
					return true
				}
				stack[n-1].keys[k] = true
				stack[n-1].expectKey = false
				continue
			}
		}
		switch tok {
		case stdjson.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
		case stdjson.Delim('['):
			stack = append(stack, &frame{})
		case stdjson.Delim(']'), stdjson.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// hasLoneSurrogate reports whether valid JSON b has a \u escape of a
// surrogate that is not the first half of a pair followed by the second.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			i++
			continue
		}
		r := hex4(b, i+2)
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+11 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if r2 := hex4(b, i+8); r2 >= 0xDC00 && r2 < 0xE000 {
					i += 11
					continue
				}
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
		i += 5
	}
	return false
}

func hex4(b []byte, i int) int {
	if i+4 > len(b) {
		return -1
	}
	n := 0
	for _, c := range b[i : i+4] {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int(c-'A') + 10
		default:
			return -1
		}
	}
	return n
}

// exactKeys reports whether every top-level key of valid JSON object b is
// exactly the JSON name of a field of *t.
func exactKeys(b []byte, t reflect.Type) bool {
	var m map[string]stdjson.RawMessage
	if err := stdjson.Unmarshal(b, &m); err != nil {
		return false
	}
	names := map[string]bool{}
	for i := 0; i < t.Elem().NumField(); i++ {
		name, _, _ := strings.Cut(t.Elem().Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	for k := range m {
		if !names[k] {
			return false
		}
	}
	return true
}

package httpapi

import (
	"reflect"
	"testing"
)

var authorizeCorpus = []string{
	`{"action":"chat"}`,
	`{"action":"use_tools","tool":"web_search","agent":"alpha"}`,
	` { "action" : "chat" , "tool" : null } `,
	`{"tool":"a","tool":"b","action":"x"}`,
	`{"action":"é漢"}`,
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
	`{"action":"tab` + "\t" + `"}`,
	`[]`, `null`, ``, `{`, `{"action"`, `{"action":`, `{"action":nul}`, `{"action":"chat" "tool":"x"}`,
}

func TestAuthorizeFastPathAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range authorizeCorpus {
		checkAuthorizeDecode(t, []byte(in))
	}
}

func FuzzAuthorizeFastPathAgreesWithEncodingJSON(f *testing.F) {
	for _, in := range authorizeCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAuthorizeDecode(t, b) })
}

// checkAuthorizeDecode: whenever the fast path accepts, the strict decoder
// accepts too and yields the same value.
func checkAuthorizeDecode(t *testing.T, b []byte) {
	t.Helper()
	var fast authorizeBody
	if !fastAuthorize(b, &fast) {
		return
	}
	var slow authorizeBody
	if err := decodeObject(b, &slow, ""); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refused: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, slow)
	}
}

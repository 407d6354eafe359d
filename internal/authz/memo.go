package authz

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
)

// The decision memo maps (bundle generation, the whole input document) to
// the decision. It is sound for ANY deterministic policy: the same data and
// the same input always yield the same decision, so an entry can never be
// stale — when a fact changes, the input changes and the key with it; when
// the bundle changes, the generation does. It never extends a credential:
// liveness (revocation, expiry, status) is checked in Go before a decision
// is asked for, and those facts are part of the input anyway. It is off while
// the active policy calls a non-deterministic built-in (time, rand, http),
// and altogether with a negative Config.MemoSize (serve --memo-size=0). The
// first decision under a new generation empties it: the old generation's
// entries could never answer again.
//
// The key and the input come from one description of the document
// (facts.render): the key encodes it without building ast terms, so a hit
// costs a fraction of building the input, and skips that and the
// evaluation. TestMemoKeyFollowsEveryFactReflectively checks it anyway.

// DefaultMemoSize is how many decisions the memo holds unless
// Config.MemoSize says otherwise.
const DefaultMemoSize = 16384

const maxMemoKey = 4096 // large inputs (long candidate lists) are not memoized

type memo struct {
	cache *lru.Cache[string, policy.Decision]
	size  int           // what cache was made to hold
	gen   atomic.Uint64 // the newest generation the memo has seen
}

// newMemo holds size decisions (0: DefaultMemoSize); a negative size is no
// memo at all (nil), and then no key is built either.
func newMemo(size int) *memo {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultMemoSize
	}
	c, err := lru.New[string, policy.Decision](size)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &memo{cache: c, size: size}
}

// observe notes that a decision is asked under generation g and empties the
// memo when g is newer than any seen before. Generations only grow, so a
// decision still running under the previous one never empties it again; an
// answer it files afterwards carries its old generation in its key, matches
// nothing, and ages out like any unused entry.
func (m *memo) observe(g uint64) {
	for {
		seen := m.gen.Load()
		if g <= seen {
			return
		}
		if m.gen.CompareAndSwap(seen, g) {
			m.cache.Purge()
			return
		}
	}
}

// maxCandidates bounds the candidate lists whose decisions are memoized:
// a long listing is rarely asked twice and would make a long key.
const maxCandidates = 32

// key encodes the generation and the input document, as facts.render
// describes it (the same description input() builds): a compact encoding
// in which every token starts with its own marker and strings are
// length-prefixed, so two keys are equal only for equal documents.
func (f *facts) key(generation uint64) (string, bool) {
	if len(f.candidates) > maxCandidates {
		return "", false
	}
	k := keySinks.Get().(*keySink)
	defer keySinks.Put(k)
	k.b = strconv.AppendUint(k.b[:0], generation, 36)
	f.render(k)
	if len(k.b) > maxMemoKey {
		return "", false
	}
	return string(k.b), true
}

// keySinks recycles key buffers: a memo hit then allocates only its key.
var keySinks = sync.Pool{New: func() any { return &keySink{b: make([]byte, 0, 512)} }}

// keySink encodes the document for the memo key.
type keySink struct{ b []byte }

func (k *keySink) open(array bool, _ int) {
	if array {
		k.b = append(k.b, '[')
	} else {
		k.b = append(k.b, '{')
	}
}
func (k *keySink) close()             { k.b = append(k.b, '}') }
func (k *keySink) field(name string)  { k.b = appendStr(append(k.b, 'k'), name) }
func (k *keySink) str(s string)       { k.b = appendStr(append(k.b, 's'), s) }
func (k *keySink) null()              { k.b = append(k.b, 'n') }
func (k *keySink) user(u *model.User) { renderUser(k, u) }
func (k *keySink) num(n int64) {
	k.b = append(strconv.AppendInt(append(k.b, 'i'), n, 10), ';')
}

// term encodes a value rendered elsewhere by its canonical text.
func (k *keySink) term(t *ast.Term) { k.b = appendStr(append(k.b, 't'), t.String()) }

// appendStr writes a length-prefixed string: injective whatever it holds.
func appendStr(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

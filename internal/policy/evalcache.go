package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// OPA memoizes, within one evaluation, every rule and function result
// (the virtual cache) and every read of bundle data (the base cache). Its
// own caches are tries built afresh for each evaluation: about 170 of the
// ~560 allocations of an authorize decision. These are the same caches,
// flat and recycled: each evaluation takes them from a pool and returns
// them. The virtual cache is empty when taken and emptied when returned:
// a decision never sees another's rule results. The base cache alone keeps
// what it holds across evaluations of the same activation (see evaluation
// below); it starts empty for any other activation.

// evaluation is what one evaluation takes from the pool: the two caches and
// its option list, which starts with the options every evaluation shares
// (built once per pooled value, as rego's option constructors allocate).
//
// The base cache alone may outlive an evaluation: it holds only what the
// store of one activation returned for a reference (OPA puts nothing else
// in it, `with data...` included), and that store is never written after
// activation, so the next Decide against the same activation may reuse it.
// It is tied to that activation's state, which it keeps alive (so no later
// state can take its address), and emptied for any other.
type evaluation struct {
	virtual virtualCache
	base    baseCache
	reads   *state // the activation whose reads base holds; nil: none
	opts    []rego.EvalOption
}

// maxPooledEntries bounds what a pooled evaluation's caches may have grown
// to: those of an unusually large evaluation (a long candidate listing) are
// dropped rather than kept for every later one.
const maxPooledEntries = 4096

var evaluations = sync.Pool{New: func() any {
	ev := &evaluation{}
	ev.virtual.index = map[cacheKey]int32{}
	ev.base.index = map[cacheKey]int32{}
	ev.virtual.Push()
	ev.opts = append(make([]rego.EvalOption, 0, sharedOptions+4), evalNoMetrics, evalRawResult,
		rego.EvalVirtualCache(&ev.virtual), rego.EvalBaseCache(&ev.base))
	return ev
}}

// sharedOptions is how many of evaluation.opts every evaluation shares.
const sharedOptions = 4

// getEvaluation returns empty caches, except that the base cache keeps what
// an earlier evaluation read from st's store (st nil: nothing is kept).
func getEvaluation(st *state) *evaluation {
	ev := evaluations.Get().(*evaluation)
	if st == nil || ev.reads != st {
		ev.base.reset()
		ev.reads = st
	}
	return ev
}

// options returns the shared options, with room for the evaluation's own.
func (ev *evaluation) options() []rego.EvalOption { return ev.opts[:sharedOptions] }

// release empties the virtual cache and returns ev to the pool.
func (ev *evaluation) release() {
	if ev.virtual.grown() || ev.base.grown() {
		return // dropped: an unusually large evaluation's memory is not kept
	}
	ev.virtual.reset()
	if ev.reads == nil {
		ev.base.reset()
	}
	clear(ev.opts[sharedOptions:cap(ev.opts)]) // the input and cancel options of the last use
	evaluations.Put(ev)
}

// cacheKey locates a chain of entries: the frame (virtual cache) and the
// hash of the reference.
type cacheKey struct {
	frame uint32
	hash  int
}

// refHash hashes ref in order (ast.Ref.Hash is a sum, blind to order).
func refHash(h int, t *ast.Term) int { return h*31 + t.Value.Hash() }

// table is the storage both caches share: entries chained by key, and
// an arena holding a copy of every key (OPA reuses the slices it passes).
type table struct {
	index map[cacheKey]int32 // key -> 1 + index of the newest entry
	list  []cacheEntry
	terms []*ast.Term
}

type cacheEntry struct {
	ref       ast.Ref
	term      *ast.Term // virtual cache
	value     ast.Value // base cache
	undefined bool
	frame     uint32
	prev      int32 // 1 + index of the previous entry with the same key, 0 at the end
}

// find returns the entry for ref under k, or nil.
func (s *table) find(k cacheKey, ref ast.Ref) *cacheEntry {
	for i := s.index[k]; i != 0; {
		e := &s.list[i-1]
		if e.frame == k.frame && e.ref.Equal(ref) {
			return e
		}
		i = e.prev
	}
	return nil
}

// add appends an entry for ref under k and returns it.
func (s *table) add(k cacheKey, ref ast.Ref) *cacheEntry {
	n := len(s.terms)
	s.terms = append(s.terms, ref...)
	s.list = append(s.list, cacheEntry{ref: s.terms[n:len(s.terms):len(s.terms)], frame: k.frame, prev: s.index[k]})
	s.index[k] = int32(len(s.list))
	return &s.list[len(s.list)-1]
}

// grown reports whether s outgrew what a pooled evaluation may keep: its
// entries, its key terms, or the index (which keeps the names of entries
// of popped frames until reset).
func (s *table) grown() bool {
	return len(s.list) > maxPooledEntries || cap(s.terms) > 8*maxPooledEntries || len(s.index) > maxPooledEntries
}

func (s *table) reset() {
	clear(s.index)
	clear(s.list)
	s.list = s.list[:0]
	clear(s.terms)
	s.terms = s.terms[:0]
}

// virtualCache implements topdown.VirtualCache: a stack of frames (a `with`
// statement evaluates in a fresh frame), each a map from a reference to a
// value or to "undefined".
type virtualCache struct {
	table
	frames []frame
	nextID uint32
}

type frame struct {
	id         uint32
	start      int // entries before it belong to the frames below
	termsStart int // and so do the key terms before this
}

var _ topdown.VirtualCache = (*virtualCache)(nil)

func (c *virtualCache) top() uint32 { return c.frames[len(c.frames)-1].id }

func (c *virtualCache) key(ref ast.Ref) cacheKey {
	h := 0
	for _, t := range ref {
		h = refHash(h, t)
	}
	return cacheKey{frame: c.top(), hash: h}
}

// Push starts a new, empty frame.
func (c *virtualCache) Push() {
	c.nextID++
	c.frames = append(c.frames, frame{id: c.nextID, start: len(c.list), termsStart: len(c.terms)})
}

// Pop drops the top frame and everything cached in it.
func (c *virtualCache) Pop() {
	f := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	clear(c.list[f.start:])
	c.list = c.list[:f.start]
	clear(c.terms[f.termsStart:])
	c.terms = c.terms[:f.termsStart]
	// The index still names the dropped entries under f.id, which no
	// frame uses again (release bounds how many such names it keeps).
}

// Get returns the value cached for ref; (nil, true) when ref is known to
// be undefined, (nil, false) when nothing is cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if e := c.find(c.key(ref), ref); e != nil {
		if e.undefined {
			return nil, true
		}
		return e.term, false
	}
	return nil, false
}

// Put caches value for ref; nil records that ref is undefined. As in OPA's
// own cache (topdown/cache.go), "undefined" once recorded stays.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	k := c.key(ref)
	e := c.find(k, ref)
	if e == nil {
		e = c.add(k, ref)
	}
	if value != nil {
		e.term = value
	} else {
		e.undefined = true
	}
}

// Keys lists the references cached with a value in the top frame.
func (c *virtualCache) Keys() []ast.Ref {
	var keys []ast.Ref
	top := c.top()
	for i := range c.list {
		if e := &c.list[i]; e.frame == top && e.term != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}

func (c *virtualCache) reset() {
	c.table.reset()
	c.frames = c.frames[:0]
	c.nextID = 0
	c.Push()
}

// baseCache implements topdown.BaseCache: values read from the store by
// reference. A value cached at a prefix of a reference answers for the
// whole reference, as in OPA's trie.
type baseCache struct{ table }

var _ topdown.BaseCache = (*baseCache)(nil)

// Get returns the value at ref, found under the shortest cached prefix.
func (c *baseCache) Get(ref ast.Ref) ast.Value {
	h := 0
	for i, t := range ref {
		h = refHash(h, t)
		if e := c.find(cacheKey{hash: h}, ref[:i+1]); e != nil && e.value != nil {
			if i == len(ref)-1 {
				return e.value
			}
			v, err := e.value.Find(ref[i+1:])
			if err != nil {
				return nil
			}
			return v
		}
	}
	return nil
}

// Put caches value at ref.
func (c *baseCache) Put(ref ast.Ref, value ast.Value) {
	h := 0
	for _, t := range ref {
		h = refHash(h, t)
	}
	k := cacheKey{hash: h}
	e := c.find(k, ref)
	if e == nil {
		e = c.add(k, ref)
	}
	e.value = value
}

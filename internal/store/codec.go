package store

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

// dbTime scans a timestamp column from either dialect: lib/pq yields a
// time.Time, SQLite the text written by sqliteTime. Valid is false for NULL.
type dbTime struct {
	T     time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d = dbTime{}
		return nil
	case time.Time:
		*d = dbTime{T: x.UTC(), Valid: true}
		return nil
	case string:
		return d.parse(x)
	case []byte:
		return d.parse(string(x))
	}
	return fmt.Errorf("store: cannot scan %T into a timestamp", v)
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("store: bad stored timestamp %q: %w", s, err)
	}
	*d = dbTime{T: t.UTC(), Valid: true}
	return nil
}

// ptr returns the timestamp as an optional value.
func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// orNow returns t normalised for storage, or now when t is zero.
func orNow(t time.Time, now func() time.Time) time.Time {
	if t.IsZero() {
		t = now()
	}
	return normalTime(t)
}

// marshalStrings encodes a list as a JSON array; nil becomes "[]".
func marshalStrings(list []string) (string, error) {
	if list == nil {
		list = []string{}
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// intern returns the canonical copy of a value that recurs across rows (a
// status, a role, a capability or tool name, a tool policy mode): records
// held for long, such as the token cache's, then share one copy of each
// instead of holding one small allocation per row for the collector to walk
// (BenchmarkCachedTokenHeap in internal/credential, which also counts the
// resolver sharing the hash: 25.8 → 13.1 objects per cached token). The
// table holds its strings for the life of the process (the standard
// library's unique.Make would forget them at every collection), and at most
// maxInterned of them, each at most maxInternedLen bytes: a longer value,
// or one read after the table is full, is simply not shared. (Anyone who
// may set tool names can fill the table with made-up ones; that costs the
// sharing, never a wrong value.)
func intern(s string) string { return interned.intern(s) }

// maxInterned and maxInternedLen bound the process's intern table: at most
// about 2 MB with its map's overhead. 128 bytes is also the longest name
// the API accepts.
const (
	maxInterned    = 8192
	maxInternedLen = 128
)

var interned = &internTable{max: maxInterned, maxLen: maxInternedLen}

// internTable is a bounded set of canonical strings, safe for concurrent
// use. It may hold a few more than max when that many goroutines add a new
// string at the same instant.
type internTable struct {
	m           sync.Map // string -> the same string, its canonical copy
	n           atomic.Int64
	max, maxLen int
}

func (t *internTable) intern(s string) string {
	if len(s) > t.maxLen {
		return s
	}
	if v, ok := t.m.Load(s); ok {
		return v.(string)
	}
	if t.n.Load() >= int64(t.max) {
		return s
	}
	v, loaded := t.m.LoadOrStore(s, s)
	if !loaded {
		t.n.Add(1)
	}
	return v.(string)
}

// size is how many strings the table holds.
func (t *internTable) size() int { return int(t.n.Load()) }

// unmarshalStrings decodes a stored JSON array of names; the result is
// never nil and its elements are interned.
func unmarshalStrings(s string) ([]string, error) {
	out := []string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	for i, v := range out {
		out[i] = intern(v)
	}
	return out, nil
}

// marshalToolPolicy encodes an optional tool policy; nil stays SQL NULL.
func marshalToolPolicy(p *model.ToolPolicy) (*string, error) {
	if p == nil {
		return nil, nil
	}
	c := *p
	if c.Tools == nil {
		c.Tools = []string{}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// unmarshalToolPolicy decodes a stored tool policy; NULL is nil.
func unmarshalToolPolicy(s *string) (*model.ToolPolicy, error) {
	if s == nil {
		return nil, nil
	}
	var p model.ToolPolicy
	if err := json.Unmarshal([]byte(*s), &p); err != nil {
		return nil, err
	}
	if p.Tools == nil {
		p.Tools = []string{}
	}
	p.Mode = intern(p.Mode)
	for i, v := range p.Tools {
		p.Tools[i] = intern(v)
	}
	return &p, nil
}

// unmarshalCapabilities decodes a stored token ceiling: NULL is nil (the
// owner's ceiling), "[]" an empty, non-nil list (nothing).
func unmarshalCapabilities(s *string) (*[]string, error) {
	if s == nil {
		return nil, nil
	}
	list, err := unmarshalStrings(*s)
	if err != nil {
		return nil, err
	}
	return &list, nil
}

// marshalCapabilities encodes a token capability list for storage: nil stays
// SQL NULL, a slice becomes a JSON array (a nil slice behind a non-nil
// pointer is "nothing", "[]", never JSON null).
func marshalCapabilities(c *[]string) (*string, error) {
	if c == nil {
		return nil, nil
	}
	caps := *c
	if caps == nil {
		caps = []string{}
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

package principal

import (
	"errors"
	"strconv"
	"strings"
)

// Reference types.
const (
	// TypeUser is the type of "user:<id|login>" references.
	TypeUser = "user"
	// TypeAudience is the type of "audience:<name>" references.
	TypeAudience = "audience"
)

// MaxRefNameLen is the longest name a reference may carry.
const MaxRefNameLen = 128

// ErrInvalidRef is matched (errors.Is) by every ParseRef error.
var ErrInvalidRef = errors.New("principal: invalid reference")

// RefError says why a principal reference was rejected; it matches
// ErrInvalidRef and does not repeat the input.
type RefError struct {
	Reason string
}

// Error returns "principal: invalid reference: <reason>".
func (e *RefError) Error() string { return ErrInvalidRef.Error() + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidRef) true.
func (e *RefError) Unwrap() error { return ErrInvalidRef }

// Ref names a principal in grants, the CLI and the API: a user (by id or
// login) or an audience.
type Ref struct {
	// Type is TypeUser or TypeAudience.
	Type string
	// Name is a user id or login, or an audience name.
	Name string
}

// ParseRef parses "user:<id|login>", "audience:<name>" or a bare name
// (meaning "audience:<name>"); names match ^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$.
func ParseRef(s string) (Ref, error) {
	if len(s) > len(TypeAudience)+1+MaxRefNameLen {
		return Ref{}, &RefError{"longer than " + strconv.Itoa(len(TypeAudience)+1+MaxRefNameLen) + " characters"}
	}
	typ, name, found := strings.Cut(s, ":")
	if !found {
		typ, name = TypeAudience, s
	}
	if typ != TypeUser && typ != TypeAudience {
		return Ref{}, &RefError{`unknown type (want "user" or "audience")`}
	}
	if err := validName(name); err != nil {
		return Ref{}, err
	}
	return Ref{Type: typ, Name: name}, nil
}

// validName checks a reference name against ^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$.
func validName(name string) error {
	switch {
	case name == "":
		return &RefError{"empty name"}
	case len(name) > MaxRefNameLen:
		return &RefError{"name longer than " + strconv.Itoa(MaxRefNameLen) + " characters"}
	case !isAlnum(name[0]):
		return &RefError{"name must start with a letter or digit"}
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '@' && c != '+' && c != '-' {
			return &RefError{"name may contain only letters, digits and . _ @ + -"}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// String returns the canonical form "<type>:<name>".
func (r Ref) String() string { return r.Type + ":" + r.Name }

// UserID returns the numeric id of a user reference whose name is a
// decimal id; a login (or an audience) reports false.
func (r Ref) UserID() (int64, bool) {
	if r.Type != TypeUser {
		return 0, false
	}
	for i := 0; i < len(r.Name); i++ {
		if r.Name[i] < '0' || r.Name[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(r.Name, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// Package model holds agentauthz's domain records (users, agents, tokens,
// grants), the domain errors, and the Store interface that persists them.
//
// It is records only: nothing here does I/O or imports a database driver, so
// a package that reads or passes records (principal, authz, httpapi) does not
// link PostgreSQL, SQLite or goose. internal/store implements Store with sqlx;
// internal/view renders records as JSON for the API and the CLI.
package model

import (
	"context"
	"errors"
	"time"
)

// Domain errors. Callers match them with errors.Is; the HTTP layer and the
// CLI each map them to a status or exit code in one table.
var (
	// ErrNotFound means the addressed record does not exist (or, for a
	// token, does not belong to the addressed agent).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule was violated (duplicate slug,
	// login or token hash).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the database could not be reached or answered
	// with an error that is not the caller's fault.
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalid means a value broke a rule of the schema (an unknown
	// status); callers should have validated it first.
	ErrInvalid = errors.New("invalid value")
	// ErrParentRevoked means a token was to be minted by a token that is
	// no longer live (revoked or deleted meanwhile).
	ErrParentRevoked = errors.New("parent token revoked")
)

// Records carry no JSON tags (ToolPolicy excepted: it is also the stored and
// requested JSON document): internal/view decides how a record is shown.

// Status values shared by users and agents.
const (
	StatusActive   = "active"
	StatusInactive = "inactive" // agents
	StatusDisabled = "disabled" // users
)

// User is a human owner of agents.
type User struct {
	ID        int64
	Login     string
	Name      string
	Roles     []string
	Status    string
	CreatedAt time.Time
}

// ToolPolicy restricts which tools an agent may use. Mode is "allow" (only
// the listed tools) or "deny" (every tool but the listed ones). A nil
// *ToolPolicy on an agent means every tool is allowed.
type ToolPolicy struct {
	Mode  string   `json:"mode"`
	Tools []string `json:"tools"`
}

// Agent is a service account owned by a user.
type Agent struct {
	ID         int64
	Slug       string
	Name       string
	OwnerID    int64
	Status     string
	ToolPolicy *ToolPolicy
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Token is the stored metadata of a per-agent bearer token. The raw token is
// never part of it; Hash is the SHA-256 hex of the raw token and is never
// serialised (json:"-" guards against a record printed by mistake).
type Token struct {
	ID      int64
	AgentID int64
	Hash    string `json:"-"`
	// Prefix is the non-secret display hint that tells tokens apart
	// (token_prefix in the views).
	Prefix string
	Label  string
	// Capabilities nil means "the owner's ceiling"; an empty slice means
	// "nothing".
	Capabilities *[]string
	LastUsedAt   *time.Time
	ExpiresAt    *time.Time
	CreatedAt    time.Time
	RevokedAt    *time.Time
	// ParentID is the token that minted this one (nil when a user or the
	// operator did); revoking the parent revokes this token too.
	ParentID *int64
}

// Grant gives a principal ("user:<id>" or "audience:<name>") a role on an
// agent. There is at most one grant per (agent, principal).
type Grant struct {
	AgentID   int64
	Principal string
	Role      string
	GrantedAt time.Time
}

// Resolved is what one indexed lookup by token hash returns: the token, its
// agent and the agent's owner. Owner is nil when the owner row is missing.
type Resolved struct {
	Token Token
	Agent Agent
	Owner *User
	// LineageEnded reports that a token above this one (the token that
	// minted it, or one above that) is revoked or deleted: the token is
	// dead whatever its own row says.
	LineageEnded bool
}

// AgentPatch is a partial update of an agent; nil fields are left alone.
// ClearToolPolicy removes the tool policy (every tool allowed).
type AgentPatch struct {
	Name            *string
	Status          *string
	ToolPolicy      *ToolPolicy
	ClearToolPolicy bool
}

// UserPatch is a partial update of a user; nil fields are left alone.
type UserPatch struct {
	Name   *string
	Roles  *[]string
	Status *string
}

// AgentQuery selects agents for listings, ordered by id. Without All, an
// agent is kept when it is owned by OwnerID, holds a grant to one of
// OrPrincipals or holds a grant OrGrants matches; a query that names none
// of them (and not All) selects nothing, so a forgotten filter fails
// closed. AfterID 0 and Limit 0 mean "from the start" and "no limit".
type AgentQuery struct {
	// OwnerID keeps agents owned by this user.
	OwnerID int64
	// OrPrincipals also keeps agents holding a grant to any of these
	// principals (combined with OwnerID by OR).
	OrPrincipals []string
	// OrGrants also keeps agents holding a grant one of these matches
	// (combined with the others by OR).
	OrGrants []GrantMatch
	// All ignores OwnerID, OrPrincipals and OrGrants and returns every agent.
	All bool
	// AfterID keeps agents whose id is greater (paging by id).
	AfterID int64
	// Limit caps the number of agents returned; 0 or less means no cap.
	Limit int
}

// GrantMatch matches a grant to Principal whose role is one of Roles.
type GrantMatch struct {
	Principal string
	Roles     []string
}

// Store persists the domain records. Every method takes a context first and
// respects its deadline. Implementations return the domain errors above,
// wrapped with detail, never driver errors.
type Store interface {
	// CreateUser inserts u (id assigned; empty status is active, zero
	// CreatedAt is now) and returns it as stored; a taken login is
	// ErrConflict.
	CreateUser(ctx context.Context, u User) (User, error)
	// GetUser returns the user with id.
	GetUser(ctx context.Context, id int64) (User, error)
	// GetUserByLogin returns the user with login.
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// GetUsers returns the users with the given ids (missing ids are
	// skipped), ordered by id, in one round trip per 500 ids.
	GetUsers(ctx context.Context, ids []int64) ([]User, error)
	// ListUsers returns every user ordered by id.
	ListUsers(ctx context.Context) ([]User, error)
	// ListUsersAfter returns at most limit users with an id above
	// afterID, ordered by id: one page of the users.
	ListUsersAfter(ctx context.Context, afterID int64, limit int) ([]User, error)
	// UpdateUser applies p and returns the updated user.
	UpdateUser(ctx context.Context, id int64, p UserPatch) (User, error)

	// CreateAgent inserts a (id assigned; empty status is active, zero
	// times are now) and returns it as stored; a missing owner is
	// ErrNotFound, a taken slug ErrConflict.
	CreateAgent(ctx context.Context, a Agent) (Agent, error)
	// GetAgent returns the agent with id.
	GetAgent(ctx context.Context, id int64) (Agent, error)
	// GetAgentBySlug returns the agent with slug.
	GetAgentBySlug(ctx context.Context, slug string) (Agent, error)
	// ListAgents returns the agents q selects, ordered by id.
	ListAgents(ctx context.Context, q AgentQuery) ([]Agent, error)
	// UpdateAgent applies p, sets updated_at and returns the agent.
	UpdateAgent(ctx context.Context, id int64, p AgentPatch) (Agent, error)
	// DeleteAgent removes the agent, its grants and its tokens in one
	// transaction, revokes every token minted from them on other agents,
	// and returns the ids of those tokens.
	DeleteAgent(ctx context.Context, id int64) ([]int64, error)

	// CreateToken inserts t (id assigned; zero CreatedAt is now) and
	// returns it as stored; a missing agent is ErrNotFound, a stored hash
	// ErrConflict, a ParentID that names no live token (missing or
	// revoked, checked under a lock against a concurrent revocation)
	// ErrParentRevoked.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// ListTokens returns the agent's tokens, revoked ones included,
	// ordered by id.
	ListTokens(ctx context.Context, agentID int64) ([]Token, error)
	// RevokeToken sets revoked_at on the token if it belongs to agentID
	// (ErrNotFound otherwise) and on every token minted from it,
	// transitively, in one transaction; it returns the token and the ids
	// of those descendants. Revoking a revoked token keeps the first
	// revoked_at and succeeds.
	RevokeToken(ctx context.Context, agentID, tokenID int64, at time.Time) (Token, []int64, error)
	// ResolveTokenHash is the hot-path lookup: one indexed query by hash
	// returning token, agent and owner. It does not judge liveness.
	ResolveTokenHash(ctx context.Context, hash string) (Resolved, error)
	// ResolveTokenID is the same lookup by token id (ErrNotFound when there
	// is no such token). It does not judge liveness.
	ResolveTokenID(ctx context.Context, id int64) (Resolved, error)
	// TouchTokens records last_used_at for many tokens; it never moves a
	// timestamp backwards.
	TouchTokens(ctx context.Context, used map[int64]time.Time) error

	// PutGrant creates or replaces the grant for (agent, principal) and
	// reports whether it was created.
	PutGrant(ctx context.Context, g Grant) (Grant, bool, error)
	// DeleteGrant removes the grant; ErrNotFound if there is none.
	DeleteGrant(ctx context.Context, agentID int64, principal string) error
	// ListGrants returns the agent's grants ordered by principal.
	ListGrants(ctx context.Context, agentID int64) ([]Grant, error)
	// GrantsFor returns the grants on the given agents whose principal is
	// one of principals.
	GrantsFor(ctx context.Context, agentIDs []int64, principals []string) ([]Grant, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Package policy owns agentauthz's embedded OPA engine: it loads a policy
// bundle (the embedded default, a directory or a tarball), activates it once
// (compile, validate, prepare the decision query, and decide its decision
// cases: see cases.go) and answers decisions with the prepared query,
// lock-free. It tracks whether the active policy keeps failing at
// evaluation (Failing), which readiness reports.
//
// With an OPA configuration file (opaconfig.go) it also runs OPA's plugin
// manager (plugins.go): bundles pulled from a bundle server and verified,
// decision logs and status reports through OPA's own plugins. Every bundle,
// whatever its source, activates only through ActivateBundle, compiled
// without the restricted built-ins the operator has not allowed
// (capabilities.go).
//
// It must never decide in Go: every rule lives in the Rego of the bundle. It
// must never allow on failure: an undefined, malformed or erroring decision
// is an error the caller turns into a deny. It never writes input documents
// to its own logs; only a configured decision log (decisionlog.go) ships them.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ErrPolicy is wrapped by every evaluation failure: the caller must deny.
var ErrPolicy = errors.New("policy: evaluation failed")

// ErrUndefined is returned (wrapped) when the decision rule is undefined for an input; it also matches ErrPolicy.
var ErrUndefined = fmt.Errorf("%w: decision undefined", ErrPolicy)

// ErrNoBundle is returned (wrapped) by every decision of an engine that
// awaits its first bundle (Options.Await); it also matches ErrPolicy.
var ErrNoBundle = fmt.Errorf("%w: no policy bundle activated yet", ErrPolicy)

// ErrRejected is wrapped by every error that refused to activate a bundle.
var ErrRejected = errors.New("policy: bundle rejected")

// Options configures an Engine.
type Options struct {
	// BundlePath is a bundle directory or .tar.gz; "" selects the embedded default.
	BundlePath string
	// Logger receives activation and rejection events; nil discards them.
	Logger *slog.Logger
	// WatchDebounce is how long Watch waits for changes to settle; 0 means 250ms.
	WatchDebounce time.Duration
	// FailStreak is how many consecutive failed evaluations make the active
	// policy count as failing (see Failing); 0 means 5.
	FailStreak int
	// FailWindow is how long the latest failure keeps a streak failing; 0 means 30s.
	FailWindow time.Duration
	// AllowBuiltins names restricted built-ins (see RestrictedBuiltins) the
	// operator lets bundles call; a bundle calling any other is refused.
	AllowBuiltins []string
	// AllowNet names the hosts the allowed built-ins (http.send, a JSON
	// schema's $ref) may reach; empty means none.
	AllowNet []string
	// Verification, when set, makes BundlePath a signed bundle: its
	// .signatures.json is verified as OPA's bundle plugin does (OPA's
	// `keys` and `signing` settings) and a bundle that fails is refused.
	Verification *bundle.VerificationConfig
	// Await starts the engine with no bundle at all: every decision fails
	// (ErrNoBundle, so callers deny with 503) until ActivateBundle succeeds.
	// It is for a bundle server's bundle: a replica never decides with a
	// policy its operator did not configure, such as the embedded default.
	Await bool
}

// Activation describes the bundle currently answering decisions.
type Activation struct {
	// Revision is the manifest revision plus a short hash of the bundle content.
	Revision string
	// Generation increases by one on every activation of this engine.
	Generation uint64
	// Deterministic is false when the policy calls a non-deterministic builtin (time, rand, http).
	Deterministic bool
	// AgentRoles maps each agent role to its rank (data.agentauthz.config.agent_roles); read-only.
	AgentRoles map[string]int
	// UserRoles lists the user roles of data.agentauthz.config.roles, sorted.
	UserRoles []string
	// Abilities lists the abilities of data.agentauthz.config.abilities, sorted.
	Abilities []string
	// Actions lists the runtime actions of data.agentauthz.config.actions, sorted.
	Actions []string
	// RouteHeaders lists, in lower case and sorted, the request headers the
	// forward-auth route table reads (its routes' tool_header): the only
	// headers of a forwarded request Go passes to the policy.
	RouteHeaders []string
	// Source says where the bundle came from ("embedded" or a path).
	Source string
	// ActivatedAt is when this activation started serving.
	ActivatedAt time.Time
	// Cases is how many decision cases the bundle decided before activation.
	Cases int
	// CasesFromBundle is true when those cases are the bundle's own
	// (data.agentauthz.cases; expectations compared), false when it ships
	// none and the default bundle's inputs were only checked to decide.
	CasesFromBundle bool
}

// state is one immutable activation: everything a decision needs.
type state struct {
	act      Activation
	decision rego.PreparedEvalQuery
	hash     string // content hash, to skip reloads that change nothing
	compiler *ast.Compiler
	data     map[string]any // the bundle's data, read-only

	nondeterministic []string // builtins that make Deterministic false, for the log
	uncovered        []string // abilities none of the bundle's own cases asks about, for the log

	health evalHealth // outcomes of this activation's evaluations (Failing)
}

// Engine evaluates decisions against the active bundle; it is safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	caps *ast.Capabilities // this OPA version's, minus the restricted built-ins not allowed, allow_net set

	listeners []func(*ast.Compiler, map[string]any) // told of every activation (OnActivate)

	cur atomic.Pointer[state] // swapped whole; Decide only loads it

	mu  sync.Mutex // serialises activations so generations follow activation order
	gen uint64     // guarded by mu

	evalFailures atomic.Uint64 // failed evaluations since start
	rejections   atomic.Uint64 // refused candidate bundles since start

	lastLoad atomic.Pointer[LoadOutcome] // the latest attempt to load or activate a bundle
}

// LoadOutcome is the latest attempt to bring in a bundle: a reload, an
// activation, or a download from a bundle server.
type LoadOutcome struct {
	// At is when the attempt ended.
	At time.Time
	// Err is why it failed (the previous bundle kept serving); nil on success.
	Err error
}

// LastLoad returns the latest attempt to load a bundle; the zero value before any.
func (e *Engine) LastLoad() LoadOutcome {
	if o := e.lastLoad.Load(); o != nil {
		return *o
	}
	return LoadOutcome{}
}

func (e *Engine) noteLoad(err error) {
	e.lastLoad.Store(&LoadOutcome{At: time.Now(), Err: err})
}

// decisionQuery is the one query the engine prepares per activation.
var decisionQuery = ast.MustParseBody("data.agentauthz.main.decision")

// New loads and activates the bundle named by opts, or returns why it cannot:
// like every activation, it refuses a bundle that does not decide its
// decision cases (see cases.go).
func New(ctx context.Context, opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.WatchDebounce <= 0 {
		opts.WatchDebounce = 250 * time.Millisecond
	}
	if opts.FailStreak <= 0 {
		opts.FailStreak = defaultFailStreak
	}
	if opts.FailWindow <= 0 {
		opts.FailWindow = defaultFailWindow
	}
	if err := checkAllowBuiltins(opts.AllowBuiltins); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, log: log.With("component", "policy"), caps: capabilities(opts.AllowBuiltins, opts.AllowNet)}
	if opts.Await {
		e.log.Info("policy engine awaits its bundle; every decision is refused until it activates")
		return e, nil
	}
	b, source, err := e.load()
	if err != nil {
		e.log.Error("policy bundle not loaded", "source", e.source(), "error", err)
		return nil, err
	}
	if err := e.ActivateBundle(ctx, b, source); err != nil {
		return nil, err
	}
	return e, nil
}

// OnActivate registers f to be told of every later activation, with its
// compiled policy and data (both read-only), while activations are held
// off; f must be quick. It is how OPA's plugin manager learns of the
// bundle, so that the decision-log plugin's mask and drop rules
// (data.system.log) come from the bundle that decides. f is called at once
// with the current activation's.
func (e *Engine) OnActivate(f func(*ast.Compiler, map[string]any)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listeners = append(e.listeners, f)
	if st := e.cur.Load(); st != nil {
		f(st.compiler, st.data)
	}
}

// Activation returns a description of the active bundle.
func (e *Engine) Activation() Activation {
	if st := e.cur.Load(); st != nil {
		return st.act
	}
	return Activation{Source: "none yet (awaiting the bundle)"}
}

// Reload re-reads the bundle and activates it; on any failure the previous activation keeps serving.
func (e *Engine) Reload(ctx context.Context) error {
	b, source, err := e.load()
	if err != nil {
		e.rejections.Add(1)
		e.noteLoad(err)
		e.log.Error("policy reload failed; previous bundle keeps serving", "source", e.source(), "revision", e.Activation().Revision, "error", err)
		return err
	}
	if cur := e.cur.Load(); cur != nil && cur.hash == contentHash(b) {
		e.log.Debug("policy reload: bundle unchanged", "source", source, "revision", cur.act.Revision)
		e.noteLoad(nil)
		return nil
	}
	return e.ActivateBundle(ctx, b, source) // logs its own rejection
}

// source names the configured bundle for logs and errors.
func (e *Engine) source() string {
	if e.opts.BundlePath == "" {
		return sourceEmbedded
	}
	return e.opts.BundlePath
}

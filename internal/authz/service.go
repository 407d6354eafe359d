package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/token"
)

// Engine is what the service needs from the policy engine.
type Engine interface {
	Decide(ctx context.Context, input ast.Value) (policy.Decision, error)
	Activation() policy.Activation
}

// Evicter is the credential cache's eviction path; every change that can end
// or narrow a credential goes through it.
type Evicter interface {
	EvictToken(tokenID int64)
	EvictAgent(agentID int64)
	EvictOwner(userID int64)
}

// Config holds the service's deployment settings.
type Config struct {
	// TokenPrefix is the prefix of issued tokens (default "datamachine").
	TokenPrefix string
	// MaxTokenLifetime caps expires_in; zero means no cap.
	MaxTokenLifetime time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts decisions; nil records nothing.
	Metrics *metrics.Metrics
	// DecisionLog receives every decision; nil logs none (and costs nothing).
	DecisionLog DecisionLogger
	// MemoSize is how many decisions the decision memo holds (memo.go):
	// 0 means DefaultMemoSize, a negative number no memo (every decision
	// is evaluated).
	MemoSize int
}

// Service runs abilities. It is safe for concurrent use.
type Service struct {
	st     model.Store
	engine Engine
	evict  Evicter
	cfg    Config
	memo   *memo
}

// New wires a Service; evict may be nil when no cache runs (the CLI).
func New(st model.Store, engine Engine, evict Evicter, cfg Config) *Service {
	if cfg.TokenPrefix == "" {
		cfg.TokenPrefix = token.DefaultPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if evict == nil {
		evict = noEvict{}
	}
	return &Service{st: st, engine: engine, evict: evict, cfg: cfg, memo: newMemo(cfg.MemoSize)}
}

type noEvict struct{}

func (noEvict) EvictToken(int64) {}
func (noEvict) EvictAgent(int64) {}
func (noEvict) EvictOwner(int64) {}

// decide asks the engine; any engine failure is ErrUnavailable (fail closed).
func (s *Service) decide(ctx context.Context, f *facts) (policy.Decision, error) {
	d, _, err := s.evaluate(ctx, f)
	return d, err
}

// evaluate answers from the decision memo when it can (see memo.go) and
// reports whether it did. It is the one place every decision passes, so
// it is where decisions are named (d.ID, failures included) and logged.
func (s *Service) evaluate(ctx context.Context, f *facts) (policy.Decision, bool, error) {
	return s.evaluateAs(ctx, f, false)
}

// probe decides a question about a synthetic record (an agent or user with
// a negative id, see probeGrants): a real evaluation, logged as a probe so
// that the decision log does not count it as a decision about a caller.
func (s *Service) probe(ctx context.Context, f *facts) (policy.Decision, error) {
	d, _, err := s.evaluateAs(ctx, f, true)
	return d, err
}

func (s *Service) evaluateAs(ctx context.Context, f *facts, probe bool) (d policy.Decision, memo bool, err error) {
	id := policy.NewDecisionID()
	act := s.engine.Activation() // the bundle asked, for the memo key and the log
	if s.cfg.DecisionLog != nil {
		start := time.Now()
		defer func() {
			r := decisionRecord(f, start, d, memo, err, s.revisionOf(act, d, memo, err))
			r.Input, r.Probe = f.input(), probe
			s.cfg.DecisionLog.LogDecision(ctx, r)
		}()
	}
	if s.memo != nil {
		s.memo.observe(act.Generation)
	}
	key, memoizable := "", act.Deterministic && s.memo != nil
	if memoizable {
		key, memoizable = f.key(act.Generation)
		if memoizable {
			if d, ok := s.memo.cache.Get(key); ok {
				s.countDecision(f.ability, d.Allow, true, probe)
				d.ID = id
				return d, true, nil
			}
		}
	}
	d, err = s.engine.Decide(ctx, f.input())
	if err != nil {
		s.cfg.Logger.Error("policy evaluation failed; denying", "ability", f.ability, "err", err)
		s.cfg.Metrics.DecisionError(f.ability)
		return policy.Decision{ID: id}, false, fmt.Errorf("%w: policy engine: %v", ErrUnavailable, err)
	}
	if memoizable && d.Generation == act.Generation {
		// a reload between reading the activation and deciding would
		// otherwise file the new bundle's answer under the old key
		s.memo.cache.Add(key, d) // stored without an id: each answer gets its own
	}
	s.countDecision(f.ability, d.Allow, false, probe)
	d.ID = id
	return d, false, nil
}

// countDecision counts an answer in the metrics, or a probe apart from them.
func (s *Service) countDecision(ability string, allow, memo, probe bool) {
	if probe {
		s.cfg.Metrics.ProbeDecision(ability, allow)
		return
	}
	s.cfg.Metrics.Decision(ability, allow, memo)
}

// activation describes the active bundle, or is ErrUnavailable while the
// engine awaits its first one (policy.Options.Await): whatever reads the
// bundle's roles or actions then answers 503, like every decision.
func (s *Service) activation() (policy.Activation, error) {
	act := s.engine.Activation()
	if act.Generation == 0 {
		return act, fmt.Errorf("%w: %v", ErrUnavailable, policy.ErrNoBundle)
	}
	return act, nil
}

// require decides and turns a deny into a *DeniedError.
func (s *Service) require(ctx context.Context, f *facts) (policy.Decision, error) {
	d, err := s.decide(ctx, f)
	if err != nil {
		return d, err
	}
	if !d.Allow {
		return d, &DeniedError{Ability: f.ability, Decision: d}
	}
	return d, nil
}

// storeErr maps a store failure that the caller did not anticipate (a
// record deleted or created concurrently) to a 4xx, never a 500.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrInvalid):
		return invalid("invalid", "", "%v", err)
	case errors.Is(err, model.ErrNotFound):
		return notFound("not_found", "%v", err)
	case errors.Is(err, model.ErrConflict):
		return conflict("conflict", "%v", err)
	case errors.Is(err, model.ErrUnavailable):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// loadAgent loads an agent by reference with its owner.
func (s *Service) loadAgent(ctx context.Context, ref string) (model.Agent, *model.User, error) {
	a, err := s.findAgent(ctx, ref)
	if err != nil {
		return a, nil, err
	}
	owner, err := s.owner(ctx, a.OwnerID)
	return a, owner, err
}

func (s *Service) findAgent(ctx context.Context, ref string) (model.Agent, error) {
	if ref == "" {
		return model.Agent{}, invalid("invalid_agent", "agent", "agent is required (a slug or an id)")
	}
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		a, err := s.st.GetAgent(ctx, id)
		if err == nil || !errors.Is(err, model.ErrNotFound) {
			return a, storeErr(err)
		}
	}
	if err := token.ValidSlug(ref); err != nil {
		return model.Agent{}, invalid("invalid_agent", "agent", "agent %q is neither an id nor a valid slug", clip(ref))
	}
	a, err := s.st.GetAgentBySlug(ctx, ref)
	if errors.Is(err, model.ErrNotFound) {
		return a, notFound("agent_not_found", "agent %q not found", ref)
	}
	return a, storeErr(err)
}

func (s *Service) owner(ctx context.Context, id int64) (*model.User, error) {
	u, err := s.st.GetUser(ctx, id)
	if errors.Is(err, model.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return &u, nil
}

// grantsOn loads the grants on agentIDs that may concern p.
func (s *Service) grantsOn(ctx context.Context, p *principal.Principal, agentIDs ...int64) ([]model.Grant, error) {
	gs, err := s.st.GrantsFor(ctx, agentIDs, identities(p))
	if err != nil {
		return nil, storeErr(err)
	}
	if gs == nil {
		gs = []model.Grant{}
	}
	return gs, nil
}

// agentScoped gathers the facts of an ability on one agent.
func (s *Service) agentScoped(ctx context.Context, p *principal.Principal, ability, ref string) (*facts, error) {
	a, owner, err := s.loadAgent(ctx, ref)
	if err != nil {
		return nil, err
	}
	gs, err := s.grantsOn(ctx, p, a.ID)
	if err != nil {
		return nil, err
	}
	return &facts{ability: ability, principal: p, agent: &a, owner: owner, grants: gs}, nil
}

// clip shortens user-supplied text echoed in messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

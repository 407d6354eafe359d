package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// The OpenID AuthZEN Authorization API 1.0 (evaluation part) at its
// standard paths. A policy enforcement point (PEP) names the subject, the
// action and the resource; every decision is Service.AuthorizeSubject, the
// very decision POST /v1/authorize makes. See README.md, "AuthZEN".
const (
	authzenEvaluationPath  = "/access/v1/evaluation"
	authzenEvaluationsPath = "/access/v1/evaluations"
	authzenDiscoveryPath   = "/.well-known/authzen-configuration"
	// MaxAuthZENEvaluations bounds the evaluations of one batch request.
	MaxAuthZENEvaluations = 64
	// authzenResourceAgent is the one resource type: an agent.
	authzenResourceAgent = "agent"
)

// The evaluation semantics of a batch (options.evaluations_semantic).
const (
	semanticExecuteAll          = "execute_all"
	semanticDenyOnFirstDeny     = "deny_on_first_deny"
	semanticPermitOnFirstPermit = "permit_on_first_permit"
)

type authzenEntity struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties"`
}

type authzenAction struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties"`
}

// authzenEvaluation is one evaluation request, or one item of a batch (whose
// absent members fall back to the batch's).
type authzenEvaluation struct {
	Subject  *authzenEntity `json:"subject"`
	Action   *authzenAction `json:"action"`
	Resource *authzenEntity `json:"resource"`
	Context  map[string]any `json:"context"`
}

type authzenEvaluationsBody struct {
	Subject     *authzenEntity      `json:"subject"`
	Action      *authzenAction      `json:"action"`
	Resource    *authzenEntity      `json:"resource"`
	Context     map[string]any      `json:"context"`
	Evaluations []authzenEvaluation `json:"evaluations"`
	// Options may carry options of other implementations: only
	// evaluations_semantic is read.
	Options map[string]any `json:"options"`
}

type authzenDecision struct {
	Decision bool                   `json:"decision"`
	Context  authzenDecisionContext `json:"context"`
}

type authzenDecisionContext struct {
	DecisionID string   `json:"decision_id"`
	DeniedBy   []string `json:"denied_by,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
}

type authzenEvaluationsView struct {
	Evaluations []authzenDecision `json:"evaluations"`
}

// authzenOptions are the strict decoding rules (strictjson.go) but for
// unknown members, which AuthZEN requires to be ignored: "To ensure forward
// compatibility, receivers MUST ignore unknown fields present in request or
// response bodies" (HTTPS JSON Binding, "JSON Serialization"). Duplicate
// keys, invalid UTF-8 and trailing data are still refused.
var authzenOptions = json.JoinOptions(strictOptions, json.RejectUnknownMembers(false))

// decodeAuthZEN reads an AuthZEN request body: one JSON object under
// authzenOptions, with decode's errors.
func (d bodyDecoder) decodeAuthZEN(c echo.Context, dst any) error {
	return d.read(c, func(b []byte) error {
		if firstByte(b) != '{' {
			return decodeObject(b, dst, "") // the non-object refusals
		}
		if err := json.Unmarshal(b, dst, authzenOptions); err != nil {
			return strictError(b, err, "")
		}
		return nil
	})
}

// authzenPEP admits the policy enforcement point: the configured bearer
// secret (compared in constant time) or a TCP peer inside the trusted
// networks. A presented bearer that does not match is refused even from a
// trusted network; nothing else is 401.
func (s *Server) authzenPEP() echo.MiddlewareFunc {
	var want [sha256.Size]byte
	hasToken := s.cfg.AuthZENPEPToken != ""
	if hasToken {
		want = sha256.Sum256([]byte(s.cfg.AuthZENPEPToken))
	}
	trusted := &principal.TrustedProxy{Networks: s.cfg.AuthZENTrustedNetworks}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if auth := req.Header.Values(echo.HeaderAuthorization); len(auth) > 0 {
				secret, ok := pepBearer(auth)
				got := sha256.Sum256([]byte(secret))
				if !ok || !hasToken || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
					return errPEPInvalid
				}
				return next(c)
			}
			if len(s.cfg.AuthZENTrustedNetworks) > 0 && trusted.Trusts(req.RemoteAddr) {
				return next(c)
			}
			return errPEPRequired
		}
	}
}

// pepBearer reads the one "Bearer <secret>" credential.
func pepBearer(headers []string) (string, bool) {
	if len(headers) != 1 {
		return "", false
	}
	scheme, secret, ok := strings.Cut(strings.TrimSpace(headers[0]), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "bearer") || secret == "" {
		return "", false
	}
	return secret, true
}

var (
	errPEPRequired = &apiError{Status: http.StatusUnauthorized, Code: "authentication_required",
		Message:      "the AuthZEN API answers policy enforcement points only: send the PEP bearer secret, or call from a trusted network",
		Authenticate: `Bearer realm="authzen"`}
	errPEPInvalid = &apiError{Status: http.StatusUnauthorized, Code: "invalid_token",
		Message:      "the policy enforcement point's bearer secret was rejected",
		Authenticate: `Bearer realm="authzen", error="invalid_token"`}
)

// authzenEvaluate answers POST /access/v1/evaluation.
func authzenEvaluate(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body authzenEvaluation
		if err := dec.decodeAuthZEN(c, &body); err != nil {
			return err
		}
		d, err := evaluateOne(c, svc, body, "")
		if err != nil {
			return err
		}
		c.Set(ctxDecisionID, d.Context.DecisionID)
		noStore(c)
		return c.JSON(http.StatusOK, d)
	}
}

// authzenEvaluateMany answers POST /access/v1/evaluations. Without
// evaluations (absent or empty) it is the single evaluation of its
// top-level members, answered as such (the spec's backwards-compatible
// form).
func authzenEvaluateMany(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body authzenEvaluationsBody
		if err := dec.decodeAuthZEN(c, &body); err != nil {
			return err
		}
		semantic, err := evaluationsSemantic(body.Options)
		if err != nil {
			return err
		}
		defaults := authzenEvaluation{Subject: body.Subject, Action: body.Action, Resource: body.Resource, Context: body.Context}
		noStore(c)
		if len(body.Evaluations) == 0 {
			d, err := evaluateOne(c, svc, defaults, "")
			if err != nil {
				return err
			}
			c.Set(ctxDecisionID, d.Context.DecisionID)
			return c.JSON(http.StatusOK, d)
		}
		if len(body.Evaluations) > MaxAuthZENEvaluations {
			return badRequest("too_many_evaluations", "evaluations", "at most %d evaluations per request, not %d", MaxAuthZENEvaluations, len(body.Evaluations))
		}
		// Every item is checked before any is decided, so a malformed
		// item is a 400 whatever the semantic would have skipped.
		items := make([]authzenEvaluation, len(body.Evaluations))
		for i, it := range body.Evaluations {
			items[i] = inherit(it, defaults)
			if _, _, err := evaluationRequest(items[i], itemPrefix(i)); err != nil {
				return err
			}
		}
		out := authzenEvaluationsView{Evaluations: make([]authzenDecision, 0, len(items))}
		ids := make([]string, 0, len(items))
		for i, it := range items {
			d, err := evaluateOne(c, svc, it, itemPrefix(i))
			if err != nil {
				return err
			}
			out.Evaluations = append(out.Evaluations, d)
			ids = append(ids, d.Context.DecisionID)
			if (semantic == semanticDenyOnFirstDeny && !d.Decision) || (semantic == semanticPermitOnFirstPermit && d.Decision) {
				break
			}
		}
		// The access log's one decision_id field: the batch's ids in
		// answer order, comma-separated (ids are hex, never a comma).
		c.Set(ctxDecisionID, strings.Join(ids, ","))
		return c.JSON(http.StatusOK, out)
	}
}

// inherit fills the members an item leaves out from the batch's.
func inherit(it, defaults authzenEvaluation) authzenEvaluation {
	if it.Subject == nil {
		it.Subject = defaults.Subject
	}
	if it.Action == nil {
		it.Action = defaults.Action
	}
	if it.Resource == nil {
		it.Resource = defaults.Resource
	}
	if it.Context == nil {
		it.Context = defaults.Context
	}
	return it
}

func itemPrefix(i int) string { return "evaluations[" + strconv.Itoa(i) + "]." }

func evaluationsSemantic(opts map[string]any) (string, error) {
	v, ok := opts["evaluations_semantic"]
	if !ok {
		return semanticExecuteAll, nil
	}
	switch s, _ := v.(string); s {
	case semanticExecuteAll, semanticDenyOnFirstDeny, semanticPermitOnFirstPermit:
		return s, nil
	}
	return "", badRequest("invalid_field", "options.evaluations_semantic",
		`options.evaluations_semantic must be "execute_all", "deny_on_first_deny" or "permit_on_first_permit"`)
}

// evaluationRequest checks an evaluation's shape and maps it to the
// service's question.
func evaluationRequest(ev authzenEvaluation, prefix string) (authz.Subject, authz.AuthorizeRequest, error) {
	var (
		sub authz.Subject
		req authz.AuthorizeRequest
	)
	switch {
	case ev.Subject == nil:
		return sub, req, badRequest("invalid_field", prefix+"subject", "subject is required")
	case ev.Action == nil:
		return sub, req, badRequest("invalid_field", prefix+"action", "action is required")
	case ev.Resource == nil:
		return sub, req, badRequest("invalid_field", prefix+"resource", "resource is required")
	case ev.Subject.Type == "" || ev.Subject.ID == "":
		return sub, req, badRequest("invalid_subject", prefix+"subject", "subject.type and subject.id are required")
	case ev.Subject.Type != authz.SubjectUser && ev.Subject.Type != authz.SubjectAudience && ev.Subject.Type != authz.SubjectAgentToken:
		return sub, req, badRequest("invalid_subject", prefix+"subject.type", `subject.type must be "user", "audience" or "agent_token"`)
	case len(ev.Subject.ID) > maxPrincipalLen:
		return sub, req, badRequest("invalid_subject", prefix+"subject.id", "subject.id must be at most %d characters", maxPrincipalLen)
	case ev.Action.Name == "":
		return sub, req, badRequest("invalid_action", prefix+"action.name", "action.name is required")
	case ev.Resource.Type != authzenResourceAgent:
		return sub, req, badRequest("invalid_resource", prefix+"resource.type", `resource.type must be "agent"`)
	}
	if err := checkIDRef(prefix+"resource.id", ev.Resource.ID); err != nil || ev.Resource.ID == "" || len(ev.Resource.ID) > maxRefLen {
		return sub, req, badRequest("invalid_agent", prefix+"resource.id", "resource.id must be an agent slug or a canonical agent id")
	}
	sub = authz.Subject{Type: ev.Subject.Type, ID: ev.Subject.ID}
	req = authz.AuthorizeRequest{Action: ev.Action.Name, Agent: ev.Resource.ID}
	if v, ok := ev.Resource.Properties["tool"]; ok {
		tool, isString := v.(string)
		if !isString {
			return sub, req, badRequest("invalid_tool", prefix+"resource.properties.tool", "resource.properties.tool must be a string")
		}
		req.Tool = &tool
	}
	return sub, req, nil
}

// evaluateOne decides one evaluation.
func evaluateOne(c echo.Context, svc *authz.Service, ev authzenEvaluation, prefix string) (authzenDecision, error) {
	sub, req, err := evaluationRequest(ev, prefix)
	if err != nil {
		return authzenDecision{}, err
	}
	res, err := svc.AuthorizeSubject(c.Request().Context(), sub, req)
	if err != nil {
		return authzenDecision{}, prefixed(err, prefix)
	}
	d := authzenDecision{Decision: res.Allow, Context: authzenDecisionContext{DecisionID: res.DecisionID}}
	if !res.Allow {
		d.Context.DeniedBy = res.DeniedBy
		d.Context.Reasons = res.Reasons
		if len(d.Context.DeniedBy) == 0 {
			d.Context.DeniedBy = []string{"policy"}
		}
	}
	return d, nil
}

// prefixed names the batch item of a service validation error, mapping the
// service's field names to the AuthZEN members they came from.
func prefixed(err error, prefix string) error {
	ve, ok := err.(*authz.ValidationError)
	if !ok {
		return err
	}
	field := ve.Field
	switch field {
	case "action":
		field = "action.name"
	case "tool":
		field = "resource.properties.tool"
	case "agent":
		field = "resource.id"
	case "minimum_role":
		field = "action.properties.minimum_role"
	}
	out := *ve
	out.Field = prefix + field
	return &out
}

// authzenConfigurationView is the PDP metadata ("Endpoint Parameters":
// policy_decision_point and access_evaluation_endpoint are REQUIRED, the
// others OPTIONAL; "the absence of any of these parameters is sufficient
// for the PEP to determine that the PDP is not capable").
type authzenConfigurationView struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint"`
	SearchSubjectEndpoint     string `json:"search_subject_endpoint"`
	SearchResourceEndpoint    string `json:"search_resource_endpoint"`
	SearchActionEndpoint      string `json:"search_action_endpoint"`
}

// authzenConfiguration answers GET /.well-known/authzen-configuration, the
// PDP metadata. The base URL is Config.AuthZENBaseURL, or else the
// request's own scheme and Host.
func (s *Server) authzenConfiguration() echo.HandlerFunc {
	return func(c echo.Context) error {
		base := strings.TrimSuffix(s.cfg.AuthZENBaseURL, "/")
		if base == "" {
			req := c.Request()
			scheme := "http"
			if req.TLS != nil {
				scheme = "https"
			}
			base = scheme + "://" + req.Host
		}
		return c.JSON(http.StatusOK, authzenConfigurationView{
			PolicyDecisionPoint:       base,
			AccessEvaluationEndpoint:  base + authzenEvaluationPath,
			AccessEvaluationsEndpoint: base + authzenEvaluationsPath,
			SearchSubjectEndpoint:     base + authzenSearchSubjectPath,
			SearchResourceEndpoint:    base + authzenSearchResourcePath,
			SearchActionEndpoint:      base + authzenSearchActionPath,
		})
	}
}

package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
)

// The AuthZEN search APIs (Authorization API 1.0, "Search APIs"): subject,
// resource and action search at their default paths, with the spec's
// pagination ("Pagination is based on the use of opaque tokens": a request
// may carry page.token and page.limit; a response carries page.next_token,
// "an empty string, signaling the end of the result set").
const (
	authzenSearchSubjectPath  = "/access/v1/search/subject"
	authzenSearchResourcePath = "/access/v1/search/resource"
	authzenSearchActionPath   = "/access/v1/search/action"
	// MaxAuthZENSearchLimit bounds page.limit; a larger one is a 400.
	MaxAuthZENSearchLimit = 1000
	// defaultAuthZENSearchLimit is the page size when page.limit is absent or 0.
	defaultAuthZENSearchLimit = 50
	// maxPageToken bounds page.token before it is decoded.
	maxPageToken = 512
)

type authzenSearchBody struct {
	Subject  *authzenEntity     `json:"subject"`
	Action   *authzenAction     `json:"action"`
	Resource *authzenEntity     `json:"resource"`
	Context  map[string]any     `json:"context"`
	Page     *authzenPageParams `json:"page"`
}

type authzenPageParams struct {
	Token string `json:"token"`
	Limit *int64 `json:"limit"`
	// Properties may carry other implementations' paging attributes:
	// none is read.
	Properties map[string]any `json:"properties"`
}

// authzenSearchView is a search response; page comes first, as the spec
// recommends ("it is RECOMMENDED that the page object be the first key").
type authzenSearchView struct {
	Page    authzenPageView `json:"page"`
	Results any             `json:"results"`
}

type authzenPageView struct {
	NextToken string `json:"next_token"`
	Count     int    `json:"count"`
}

type authzenActionView struct {
	Name string `json:"name"`
}

type authzenEntityView struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// searchKind names a search endpoint in its page tokens, so a token of one
// search is refused by another.
type searchKind string

const (
	searchSubject  searchKind = "subject"
	searchResource searchKind = "resource"
	searchAction   searchKind = "action"
)

// pageToken is the decoded page.token: where to resume, and a digest of
// the request it continues. It carries no secret and needs none: it only
// says where to resume, and every result after it is decided afresh, so a
// forged token shows nothing the PEP could not ask for anyway. It is
// validated so that garbage is a 400, and bound to its request because the
// spec asks that "PDPs SHOULD return an error when any entity or parameter
// has been changed" mid-pagination.
type pageToken struct {
	After  string `json:"a"`
	Digest string `json:"q"`
}

// searchRequest is a search body checked and mapped to the service's terms.
type searchRequest struct {
	kind   searchKind
	body   authzenSearchBody
	query  authz.SearchQuery
	digest string
}

// newSearchRequest checks the members every search shares (page and, when
// present, action) and reads the page token.
func newSearchRequest(kind searchKind, body authzenSearchBody) (*searchRequest, error) {
	r := &searchRequest{kind: kind, body: body, query: authz.SearchQuery{Limit: defaultAuthZENSearchLimit}}
	if body.Action != nil && kind != searchAction {
		r.query.Action = body.Action.Name
		if v, ok := body.Action.Properties["minimum_role"]; ok {
			role, isString := v.(string)
			if !isString || role == "" {
				return nil, badRequest("invalid_minimum_role", "action.properties.minimum_role", "action.properties.minimum_role must be an agent role (a string)")
			}
			r.query.MinimumRole = role
		}
	}
	var token string
	if p := body.Page; p != nil {
		if p.Limit != nil {
			switch l := *p.Limit; {
			case l < 0 || l > MaxAuthZENSearchLimit:
				return nil, badRequest("invalid_page_limit", "page.limit", "page.limit must be between 0 and %d", MaxAuthZENSearchLimit)
			case l > 0:
				r.query.Limit = int(l)
			}
		}
		token = p.Token
	}
	r.digest = r.fingerprint()
	if token == "" {
		return r, nil
	}
	var pt pageToken
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if len(token) > maxPageToken || err != nil || json.Unmarshal(raw, &pt) != nil || pt.After == "" {
		return nil, errBadPageToken
	}
	if pt.Digest != r.digest {
		return nil, badRequest("invalid_page_token", "page.token", "page.token belongs to another search: every member but page.token must stay as it was")
	}
	r.query.After = pt.After
	return r, nil
}

var errBadPageToken = badRequest("invalid_page_token", "page.token", "page.token is not a next_token this server issued")

// fingerprint digests everything a continued search must repeat: the
// endpoint and every member but page.token.
func (r *searchRequest) fingerprint() string {
	b := r.body
	limit := int64(r.query.Limit)
	b.Page = &authzenPageParams{Limit: &limit}
	// the members a search ignores do not bind its pages either
	switch r.kind {
	case searchSubject:
		b.Subject = typeOnly(b.Subject)
	case searchResource:
		b.Resource = typeOnly(b.Resource)
	case searchAction:
		b.Action = nil
	}
	// encoding/json writes map keys sorted: one request, one rendering.
	raw, _ := json.Marshal(struct {
		Kind searchKind        `json:"k"`
		Body authzenSearchBody `json:"b"`
	}{r.kind, b})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:12])
}

func typeOnly(e *authzenEntity) *authzenEntity {
	if e == nil {
		return nil
	}
	return &authzenEntity{Type: e.Type}
}

// next renders the next_token for a cursor ("" when done).
func (r *searchRequest) next(after string) string {
	if after == "" {
		return ""
	}
	raw, _ := json.Marshal(pageToken{After: after, Digest: r.digest})
	return base64.RawURLEncoding.EncodeToString(raw)
}

// checkSearchEntity checks a subject or resource member of a search: its
// type must be want (when want is set) and, when idRequired, its id must
// be present.
func checkSearchEntity(field string, e *authzenEntity, want string, idRequired bool) error {
	switch {
	case e == nil:
		return badRequest("invalid_field", field, "%s is required", field)
	case e.Type == "":
		return badRequest("invalid_"+field, field+".type", "%s.type is required", field)
	case want != "" && e.Type != want:
		return badRequest("invalid_"+field, field+".type", "%s.type must be %q", field, want)
	case idRequired && e.ID == "":
		return badRequest("invalid_"+field, field+".id", "%s.id is required", field)
	}
	return nil
}

// checkSubject checks a subject that names one principal.
func checkSubject(e *authzenEntity) error {
	if err := checkSearchEntity("subject", e, "", true); err != nil {
		return err
	}
	switch {
	case e.Type != authz.SubjectUser && e.Type != authz.SubjectAudience && e.Type != authz.SubjectAgentToken:
		return badRequest("invalid_subject", "subject.type", `subject.type must be "user", "audience" or "agent_token"`)
	case len(e.ID) > maxPrincipalLen:
		return badRequest("invalid_subject", "subject.id", "subject.id must be at most %d characters", maxPrincipalLen)
	}
	return nil
}

// checkAgent checks a resource that names one agent.
func checkAgent(e *authzenEntity) error {
	if err := checkSearchEntity("resource", e, authzenResourceAgent, true); err != nil {
		return err
	}
	if err := checkIDRef("resource.id", e.ID); err != nil || len(e.ID) > maxRefLen {
		return badRequest("invalid_agent", "resource.id", "resource.id must be an agent slug or a canonical agent id")
	}
	return nil
}

// checkAction checks the action member of a subject or resource search.
func checkAction(a *authzenAction) error {
	switch {
	case a == nil:
		return badRequest("invalid_field", "action", "action is required")
	case a.Name == "":
		return badRequest("invalid_action", "action.name", "action.name is required")
	}
	return nil
}

// authzenSearch is the frame every search handler shares: decode, check,
// search, answer with the page.
func authzenSearch(kind searchKind, dec bodyDecoder, search func(echo.Context, *searchRequest) (any, string, int, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body authzenSearchBody
		if err := dec.decodeAuthZEN(c, &body); err != nil {
			return err
		}
		r, err := newSearchRequest(kind, body)
		if err != nil {
			return err
		}
		results, after, count, err := search(c, r)
		if err != nil {
			return prefixed(err, "")
		}
		noStore(c)
		return c.JSON(http.StatusOK, authzenSearchView{Page: authzenPageView{NextToken: r.next(after), Count: count}, Results: results})
	}
}

// authzenSearchResource answers POST /access/v1/search/resource: the agents
// the subject may perform the action on (see authz.SearchResources).
func authzenSearchResource(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return authzenSearch(searchResource, dec, func(c echo.Context, r *searchRequest) (any, string, int, error) {
		b := r.body
		if err := checkSubject(b.Subject); err != nil {
			return nil, "", 0, err
		}
		if err := checkAction(b.Action); err != nil {
			return nil, "", 0, err
		}
		// "The Resource MUST contain a type, but the Resource id SHOULD
		// be omitted, and if present, MUST be ignored."
		if err := checkSearchEntity("resource", b.Resource, authzenResourceAgent, false); err != nil {
			return nil, "", 0, err
		}
		page, err := svc.SearchResources(c.Request().Context(), authz.Subject{Type: b.Subject.Type, ID: b.Subject.ID}, r.query)
		if err != nil {
			return nil, "", 0, err
		}
		out := make([]authzenEntityView, len(page.Results))
		for i, a := range page.Results {
			out[i] = authzenEntityView{Type: authzenResourceAgent, ID: a.Agent.Slug}
		}
		return out, page.Next, len(out), nil
	})
}

// authzenSearchSubject answers POST /access/v1/search/subject: the users or
// audiences that may perform the action on the agent (see
// authz.SearchSubjects).
func authzenSearchSubject(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return authzenSearch(searchSubject, dec, func(c echo.Context, r *searchRequest) (any, string, int, error) {
		b := r.body
		// "The Subject MUST contain a type, but the Subject id SHOULD be
		// omitted, and if present, MUST be ignored."
		if err := checkSearchEntity("subject", b.Subject, "", false); err != nil {
			return nil, "", 0, err
		}
		if err := checkAction(b.Action); err != nil {
			return nil, "", 0, err
		}
		if err := checkAgent(b.Resource); err != nil {
			return nil, "", 0, err
		}
		page, err := svc.SearchSubjects(c.Request().Context(), b.Resource.ID, b.Subject.Type, r.query)
		if err != nil {
			return nil, "", 0, err
		}
		out := make([]authzenEntityView, len(page.Results))
		for i, s := range page.Results {
			out[i] = authzenEntityView{Type: s.Subject.Type, ID: s.Subject.ID}
		}
		return out, page.Next, len(out), nil
	})
}

// authzenSearchAction answers POST /access/v1/search/action: the runtime
// actions the subject may perform on the agent (see authz.SearchActions).
// "Unlike the Subject and Resource Search APIs, the action key is omitted":
// an action member is ignored.
func authzenSearchAction(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return authzenSearch(searchAction, dec, func(c echo.Context, r *searchRequest) (any, string, int, error) {
		b := r.body
		if err := checkSubject(b.Subject); err != nil {
			return nil, "", 0, err
		}
		if err := checkAgent(b.Resource); err != nil {
			return nil, "", 0, err
		}
		q := r.query
		q.Action, q.MinimumRole = "", ""
		page, err := svc.SearchActions(c.Request().Context(), authz.Subject{Type: b.Subject.Type, ID: b.Subject.ID}, b.Resource.ID, q)
		if err != nil {
			return nil, "", 0, err
		}
		out := make([]authzenActionView, len(page.Results))
		for i, name := range page.Results {
			out[i] = authzenActionView{Name: name}
		}
		return out, page.Next, len(out), nil
	})
}

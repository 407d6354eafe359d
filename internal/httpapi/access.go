package httpapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/view"
)

// maxListLimit bounds ?limit= on listings.
const maxListLimit = 1000

type agentListView struct {
	Agents    []view.Agent `json:"agents"`
	NextAfter *int64       `json:"next_after"`
}

// listAgents lists the agents on which the caller holds at least
// ?minimum_role, one page at a time (?after=<id>&limit=<n>).
func listAgents(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		q := c.QueryParams()
		after, err := queryInt(q, "after", 0)
		if err != nil {
			return err
		}
		limit, err := queryInt(q, "limit", maxListLimit)
		if err != nil {
			return err
		}
		if q.Has("limit") && limit == 0 {
			return badRequest("invalid_limit", "limit", "limit must be an integer from 1 to %d", maxListLimit)
		}
		rows, next, err := svc.ListAccessible(c.Request().Context(), p, q.Get("minimum_role"), authz.Page{AfterID: after, Limit: int(limit)})
		if err != nil {
			return err
		}
		out := agentListView{Agents: make([]view.Agent, len(rows))}
		for i, r := range rows {
			out.Agents[i] = view.AgentWithRole(r.Agent, r.Role)
		}
		if next > 0 {
			out.NextAfter = &next
		}
		return c.JSON(http.StatusOK, out)
	}
}

// checkAccess answers whether the caller holds ?minimum_role on an agent;
// a "no" is an answer (200), not an error.
func checkAccess(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		minRole := c.QueryParam("minimum_role")
		acc, err := svc.CanAccess(c.Request().Context(), p, ref, minRole)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view.AccessOf(acc.Allowed, acc.Role, acc.Agent.ID, minRole))
	}
}

// listGrants lists who holds which role on an agent, the owner first.
func listGrants(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		gs, err := svc.ListGrants(c.Request().Context(), p, ref)
		if err != nil {
			return err
		}
		out := make([]view.Grant, len(gs))
		for i, g := range gs {
			out[i] = view.GrantOf(g.Grant, g.Implicit)
		}
		return c.JSON(http.StatusOK, map[string]any{"grants": out})
	}
}

type putGrantBody struct {
	Role string `json:"role"`
}

// principalParam is the {principal} path value ("user:3", "audience:acme");
// a user id in it must be canonical ("user:03" is refused).
func principalParam(c echo.Context) (string, error) {
	v, err := refParam(c, "principal", maxPrincipalLen)
	if err != nil {
		return "", err
	}
	if name, ok := strings.CutPrefix(v, "user:"); ok && checkIDRef("principal", name) != nil {
		return "", badRequest("invalid_principal", "principal", "principal %q names a user id that is not %s", clip(v), idRule)
	}
	return v, nil
}

// putGrant gives a principal a role on an agent: 201 when created, 200
// when it replaced an existing grant.
func putGrant(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		who, err := principalParam(c)
		if err != nil {
			return err
		}
		var body putGrantBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		g, created, err := svc.PutGrant(c.Request().Context(), p, ref, who, body.Role)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return c.JSON(status, view.GrantOf(g, false))
	}
}

// deleteGrant removes a principal's grant on an agent.
func deleteGrant(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		who, err := principalParam(c)
		if err != nil {
			return err
		}
		if err := svc.DeleteGrant(c.Request().Context(), p, ref, who); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

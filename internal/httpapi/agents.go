package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/view"
)

type createAgentBody struct {
	Slug       string          `json:"slug"`
	Name       string          `json:"name"`
	Owner      string          `json:"owner"`
	ToolPolicy json.RawMessage `json:"tool_policy"`
}

// toolPolicyBody decodes an optional tool policy: absent → (nil, false),
// null → (nil, true), an object → (policy, false).
func toolPolicyBody(raw json.RawMessage) (tp *model.ToolPolicy, isNull bool, err error) {
	if raw == nil {
		return nil, false, nil
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, true, nil
	}
	var out model.ToolPolicy
	if err := decodeObject(raw, &out, "tool_policy"); err != nil {
		return nil, false, err
	}
	return &out, false, nil
}

// createAgent creates an agent owned by the body's owner or the caller.
func createAgent(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		var body createAgentBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		if err := checkIDRef("owner", body.Owner); err != nil {
			return err
		}
		tp, _, err := toolPolicyBody(body.ToolPolicy)
		if err != nil {
			return err
		}
		a, err := svc.CreateAgent(c.Request().Context(), p, authz.CreateAgentRequest{Slug: body.Slug, Name: body.Name, Owner: body.Owner, ToolPolicy: tp})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, view.AgentOf(a))
	}
}

// showAgent shows an agent with the caller's role on it.
func showAgent(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		a, err := svc.GetAgent(c.Request().Context(), p, ref)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view.AgentWithRole(a.Agent, a.Role))
	}
}

type updateAgentBody struct {
	Name       *string         `json:"name"`
	Status     *string         `json:"status"`
	ToolPolicy json.RawMessage `json:"tool_policy"`
}

// updateAgent changes name, status or tool policy; tool_policy null clears it.
func updateAgent(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		var body updateAgentBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		tp, clear, err := toolPolicyBody(body.ToolPolicy)
		if err != nil {
			return err
		}
		a, err := svc.UpdateAgent(c.Request().Context(), p, ref, authz.AgentUpdate{Name: body.Name, Status: body.Status, ToolPolicy: tp, ClearToolPolicy: clear})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view.AgentOf(a))
	}
}

// deleteAgent deletes an agent, its grants and its tokens.
func deleteAgent(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		if err := svc.DeleteAgent(c.Request().Context(), p, ref); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/view"
)

type createTokenBody struct {
	Label        string    `json:"label"`
	Capabilities *[]string `json:"capabilities"`
	ExpiresIn    *int64    `json:"expires_in"`
}

// createToken issues a token; the raw token appears in this response only.
func createToken(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		var body createTokenBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		ct, err := svc.CreateToken(c.Request().Context(), p, ref, authz.CreateTokenRequest{
			Label: body.Label, Capabilities: body.Capabilities, ExpiresIn: body.ExpiresIn,
		})
		if err != nil {
			return err
		}
		noStore(c)
		return c.JSON(http.StatusCreated, view.CreatedTokenOf(ct.Token, ct.Raw))
	}
}

// listTokens lists an agent's tokens: metadata only.
func listTokens(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		ts, err := svc.ListTokens(c.Request().Context(), p, ref)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"tokens": view.TokensOf(ts)})
	}
}

// revokeToken revokes one token and answers with its metadata.
func revokeToken(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := agentParam(c)
		if err != nil {
			return err
		}
		id, err := tokenIDParam(c)
		if err != nil {
			return err
		}
		t, err := svc.RevokeToken(c.Request().Context(), p, ref, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view.TokenOf(t))
	}
}

package httpapi

import (
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
)

// whoami describes the caller and its effective capabilities.
func whoami(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		w, err := svc.Whoami(c.Request().Context(), p)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, viewWhoami(w))
	}
}

type authorizeBody struct {
	Action string  `json:"action"`
	Tool   *string `json:"tool"`
	Agent  string  `json:"agent"`
}

// outPool recycles the authorize response buffers.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// authorize is the runtime decision endpoint and the hot path: a strict
// decode into a small struct, one service call, a reflection-free encode.
// A deny is an answer (200 with allow:false), not an error.
func authorize(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		var body authorizeBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		if err := checkIDRef("agent", body.Agent); err != nil {
			return err
		}
		res, err := svc.Authorize(c.Request().Context(), p, authz.AuthorizeRequest{Action: body.Action, Tool: body.Tool, Agent: body.Agent})
		if err != nil {
			return err
		}
		c.Set(ctxDecisionID, res.DecisionID) // for the access log: audit correlation
		bp := outPool.Get().(*[]byte)
		out := appendAuthorize((*bp)[:0], res)
		err = c.JSONBlob(http.StatusOK, out)
		if cap(out) <= 64<<10 {
			*bp = out
			outPool.Put(bp)
		}
		return err
	}
}

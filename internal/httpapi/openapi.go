package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the API's contract, written by hand; tests validate real
// responses against it.
//
//go:embed openapi.json
var OpenAPI []byte

// openAPIDocument serves the OpenAPI document.
func openAPIDocument() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, OpenAPI)
	}
}

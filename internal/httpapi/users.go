package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/view"
)

type createUserBody struct {
	Login string   `json:"login"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// createUser creates a user.
func createUser(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		var body createUserBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		u, err := svc.CreateUser(c.Request().Context(), p, authz.CreateUserRequest{Login: body.Login, Name: body.Name, Roles: body.Roles})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, view.UserOf(u))
	}
}

// listUsers lists every user.
func listUsers(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		us, err := svc.ListUsers(c.Request().Context(), p)
		if err != nil {
			return err
		}
		out := make([]view.User, len(us))
		for i, u := range us {
			out[i] = view.UserOf(u)
		}
		return c.JSON(http.StatusOK, map[string]any{"users": out})
	}
}

type updateUserBody struct {
	Name   *string   `json:"name"`
	Roles  *[]string `json:"roles"`
	Status *string   `json:"status"`
}

// updateUser changes a user's name, roles or status.
func updateUser(svc *authz.Service, dec bodyDecoder) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		ref, err := userParam(c)
		if err != nil {
			return err
		}
		var body updateUserBody
		if err := dec.decode(c, &body); err != nil {
			return err
		}
		u, err := svc.UpdateUser(c.Request().Context(), p, ref, authz.UserUpdate{Name: body.Name, Roles: body.Roles, Status: body.Status})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view.UserOf(u))
	}
}

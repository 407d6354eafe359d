// Package httpapi is agentauthz's REST API: an Echo v4 server that turns
// HTTP requests into calls on the authz service and renders the answers.
//
// It must never decide: handlers parse and validate the shape of a request,
// call one Service method and render the result. Who may do what is the
// policy's answer, reached through the service. It never logs, stores or
// echoes a raw bearer token or the Authorization header.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultBodyLimit       = 64 << 10
	DefaultRequestTimeout  = 10 * time.Second
	DefaultReadTimeout     = 15 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
)

// Config holds the server's deployment settings. Zero values take the
// defaults above; a negative RequestTimeout disables the per-request
// deadline. The deadline holds even when a handler does not return: the
// client gets 503 timeout at RequestTimeout and the late answer is dropped.
type Config struct {
	Addr            string
	BodyLimit       int64
	RequestTimeout  time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	// AccessLog writes one structured record per request.
	AccessLog bool
	Logger    *slog.Logger
	// AuthZENPEPToken is the bearer secret a policy enforcement point
	// presents to the AuthZEN endpoints; empty accepts none.
	AuthZENPEPToken string
	// AuthZENTrustedNetworks are the TCP peers admitted to the AuthZEN
	// endpoints without the secret (--authzen-trusted-networks, never
	// --trusted-proxies: a proxy's clients are not PEPs).
	AuthZENTrustedNetworks []netip.Prefix
	// AuthZENBaseURL is the policy_decision_point the discovery document
	// names; empty derives it from each request's scheme and Host.
	AuthZENBaseURL string
}

// Deps are the server's collaborators.
type Deps struct {
	Service *authz.Service
	// Principals resolves the caller of each /v1 request.
	Principals principal.Chain
	// Ready reports whether the store answers and the policy engine has an
	// active bundle; nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics records request latencies and is served at GET /metrics;
	// nil disables both.
	Metrics *metrics.Metrics
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	deps Deps
	e    *echo.Echo
	log  *slog.Logger
}

// New builds a Server with every route registered.
func New(cfg Config, deps Deps) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Server.ReadHeaderTimeout = cfg.ReadTimeout
	e.Server.ReadTimeout = cfg.ReadTimeout
	e.Server.WriteTimeout = cfg.WriteTimeout
	e.Server.IdleTimeout = 2 * cfg.ReadTimeout
	s := &Server{cfg: cfg, deps: deps, e: e, log: cfg.Logger}
	e.HTTPErrorHandler = s.handleError
	if cfg.RequestTimeout > 0 {
		// Answers 503 timeout at the deadline even when a handler is
		// stuck in a call that ignores its context (see keepDeadline).
		e.Pre(s.deadline())
	}
	s.routes()
	return s
}

// Handler returns the server as an http.Handler (for httptest and embedding).
func (s *Server) Handler() http.Handler { return s.e }

// Echo exposes the underlying Echo instance for tests.
func (s *Server) Echo() *echo.Echo { return s.e }

// Start listens on Config.Addr and serves until Shutdown; it returns nil
// after a graceful shutdown.
func (s *Server) Start() error {
	err := s.e.Start(s.cfg.Addr)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests,
// at most Config.ShutdownTimeout (or ctx's deadline, if sooner).
func (s *Server) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	return s.e.Shutdown(ctx)
}

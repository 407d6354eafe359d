package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/token"
)

// defaultDatabaseURL is the embedded default store: a SQLite file in the
// working directory, created on first use.
const defaultDatabaseURL = "sqlite:agentauthz.db"

// app holds the global configuration and the lazily built graph.
type app struct {
	stdout, stderr io.Writer

	databaseURL      string
	policyBundle     string
	tokenPrefix      string
	maxTokenLifetime time.Duration
	as               string
	format           string
	logLevel         string

	logger *slog.Logger
	// serving is set by serve: a server logs at the configured level, a
	// one-shot command only warnings.
	serving bool
	st      *store.SQL
	engine  *policy.Engine
	opa     *policy.OPAConfig // serve --opa-config, read before open
	svc     *authz.Service
}

// envBindings names the environment variable of each flag. A variable
// that is set fills its flag unless the flag is given on the command line,
// and is parsed exactly as the flag would be: a value that does not parse is
// a usage error naming the variable, never silently ignored (a mistyped
// AGENTAUTHZ_ANONYMOUS=no must not leave anonymous access on).
var envBindings = map[string]string{
	"database-url":          "AGENTAUTHZ_DATABASE_URL",
	"policy-bundle":         "AGENTAUTHZ_POLICY_BUNDLE",
	"token-prefix":          "AGENTAUTHZ_TOKEN_PREFIX",
	"max-token-lifetime":    "AGENTAUTHZ_MAX_TOKEN_LIFETIME",
	"log-level":             "AGENTAUTHZ_LOG_LEVEL",
	"addr":                  "AGENTAUTHZ_ADDR",
	"cache-ttl":             "AGENTAUTHZ_CACHE_TTL",
	"cache-size":            "AGENTAUTHZ_CACHE_SIZE",
	"memo-size":             "AGENTAUTHZ_MEMO_SIZE",
	"negative-cache-ttl":    "AGENTAUTHZ_NEGATIVE_CACHE_TTL",
	"auth-failure-burst":    "AGENTAUTHZ_AUTH_FAILURE_BURST",
	"auth-failure-refill":   "AGENTAUTHZ_AUTH_FAILURE_REFILL",
	"touch-interval":        "AGENTAUTHZ_TOUCH_INTERVAL",
	"touch-min-interval":    "AGENTAUTHZ_TOUCH_MIN_INTERVAL",
	"trusted-proxies":       "AGENTAUTHZ_TRUSTED_PROXIES",
	"proxy-user-header":     "AGENTAUTHZ_PROXY_USER_HEADER",
	"proxy-audience-header": "AGENTAUTHZ_PROXY_AUDIENCE_HEADER",
	"proxy-audiences":       "AGENTAUTHZ_PROXY_AUDIENCES",
	"anonymous":             "AGENTAUTHZ_ANONYMOUS",
	"access-log":            "AGENTAUTHZ_ACCESS_LOG",
	"body-limit":            "AGENTAUTHZ_BODY_LIMIT",
	"request-timeout":       "AGENTAUTHZ_REQUEST_TIMEOUT",
	"authzen-pep-token":     "AGENTAUTHZ_AUTHZEN_PEP_TOKEN",
	"authzen-base-url":      "AGENTAUTHZ_AUTHZEN_BASE_URL",
	"opa-config":            "AGENTAUTHZ_OPA_CONFIG",

	// who may call the AuthZEN API without its secret: not --trusted-proxies
	"authzen-trusted-networks": "AGENTAUTHZ_AUTHZEN_TRUSTED_NETWORKS",
}

// applyEnv fills the command's unset flags from their variables.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		name, ok := envBindings[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		v, set := lookup(name)
		if !set || v == "" {
			return
		}
		if serr := f.Value.Set(v); serr != nil {
			err = &usageError{fmt.Sprintf("%s=%q is not a valid --%s: %v", name, v, f.Name, serr)}
		}
	})
	return err
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "agentauthz",
		Short:         "Authorization for AI-agent service accounts: per-agent bearer tokens, three nested ceilings, audience grants",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			if a.format != "text" && a.format != "json" {
				return &usageError{fmt.Sprintf("--format must be text or json, not %q", a.format)}
			}
			return a.setupLogger()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	f := root.PersistentFlags()
	f.StringVar(&a.databaseURL, "database-url", defaultDatabaseURL, "store: postgres://... or sqlite:PATH (env AGENTAUTHZ_DATABASE_URL)")
	f.StringVar(&a.policyBundle, "policy-bundle", "", "policy bundle directory or .tar.gz instead of the embedded default (env AGENTAUTHZ_POLICY_BUNDLE)")
	f.StringVar(&a.tokenPrefix, "token-prefix", token.DefaultPrefix, "prefix of issued tokens (env AGENTAUTHZ_TOKEN_PREFIX)")
	f.DurationVar(&a.maxTokenLifetime, "max-token-lifetime", 0, "longest expires-in allowed, e.g. 2160h; 0 = no limit (env AGENTAUTHZ_MAX_TOKEN_LIFETIME)")
	f.StringVar(&a.as, "as", "", "run the command as this principal (user:<login|id>, audience:<name>) through the policy; default: the store operator")
	f.StringVar(&a.format, "format", "text", "output format: text or json")
	f.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error (env AGENTAUTHZ_LOG_LEVEL)")
	root.AddCommand(a.migrateCommand(), a.serveCommand(), a.usersCommand(), a.agentsCommand(), a.authorizeCommand(), a.policyCommand())
	return root
}

func (a *app) setupLogger() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return &usageError{fmt.Sprintf("--log-level %q: %v", a.logLevel, err)}
	}
	a.logger = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
	return nil
}

// open builds store, engine and service once.
func (a *app) open(ctx context.Context) error {
	if a.svc != nil {
		return nil
	}
	if err := token.ValidPrefix(a.tokenPrefix); err != nil {
		return &usageError{fmt.Sprintf("--token-prefix: %v", err)}
	}
	st, err := store.Open(ctx, a.databaseURL)
	if err != nil {
		return err
	}
	a.st = st
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", store.RedactURL(a.databaseURL), err)
	}
	eng, err := policy.New(ctx, a.policyOptions())
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	a.engine = eng
	a.svc = authz.New(st, eng, nil, authz.Config{TokenPrefix: a.tokenPrefix, MaxTokenLifetime: a.maxTokenLifetime, Logger: a.quietLogger()})
	return nil
}

// quietLogger keeps the CLI's own output clean: the service's info logs
// matter for a server, not for one command.
func (a *app) quietLogger() *slog.Logger {
	if a.serving || strings.EqualFold(a.logLevel, "debug") {
		return a.logger
	}
	return slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// caller is the principal a CLI command acts as: the store operator unless
// --as names someone.
func (a *app) caller(ctx context.Context) (*principal.Principal, error) {
	if a.as == "" {
		return principal.Operator(), nil
	}
	return a.svc.PrincipalFor(ctx, a.as)
}

func (a *app) close() {
	if a.st != nil {
		_ = a.st.Close()
	}
}

// service opens the graph and returns the service and the caller.
func (a *app) service(cmd *cobra.Command) (*authz.Service, *principal.Principal, error) {
	if err := a.open(cmd.Context()); err != nil {
		return nil, nil, err
	}
	p, err := a.caller(cmd.Context())
	return a.svc, p, err
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Sprintf("expected %d argument(s): %s; got %d", n, names, len(args))}
		}
		return nil
	}
}

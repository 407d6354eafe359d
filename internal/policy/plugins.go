package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/plugins/status"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Plugins runs OPA's plugin manager for an engine: the decision-log and
// status plugins as OPA runs them, and a bundle server's bundles pulled
// with OPA's downloader (ETag, polling, long polling, signature
// verification) and activated only through Engine.ActivateBundle.
//
// Why not OPA's bundle plugin itself: it activates every bundle into the
// manager's store and compiler, in its own transaction, and offers no hook
// that could refuse a bundle before that (its pre-activation hook sees the
// manifest only and cannot fail the activation). The engine must be the one
// place a bundle is compiled with the restricted capabilities, validated
// and made to decide its cases. So the downloader the bundle plugin uses is
// run here, with the bundle plugin's own configuration and status type,
// and the status plugin is told of each attempt as the bundle plugin tells it.
type Plugins struct {
	cfg    *OPAConfig
	engine *Engine
	log    *slog.Logger

	downloader *download.Downloader // nil without a bundle server
	logs       *logs.Plugin         // nil without decision_logs
	status     *status.Plugin       // nil without status

	mu     sync.Mutex          // guards the fields below
	state  bundleplugin.Status // guarded by mu
	etag   string              // of the bundle serving, guarded by mu
	served bool                // a downloaded bundle has activated, guarded by mu
}

// StartPlugins starts what cfg configures for engine: decision logs and
// status through OPA's plugin manager, and pulling the configured bundle
// from its bundle server. reg receives the status plugin's Prometheus
// collectors when `status.prometheus` is set; nil leaves them out.
func StartPlugins(ctx context.Context, cfg *OPAConfig, engine *Engine, reg prometheus.Registerer, log *slog.Logger) (*Plugins, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "opa-plugins")
	m := cfg.manager
	m.SetLogger(opaLogger{log})
	if reg != nil {
		plugins.WithPrometheusRegister(reg)(m)
	}
	p := &Plugins{cfg: cfg, engine: engine, log: log}
	p.state.Name = cfg.bundleName
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("opa plugin manager: %w", err)
	}
	if cfg.logs != nil {
		p.logs = logs.New(cfg.logs, m)
		m.Register(logs.Name, p.logs)
		engine.OnActivate(p.publish) // mask and drop rules come from the active bundle
	}
	if cfg.status != nil {
		p.status = status.New(cfg.status, m)
		m.Register(status.Name, p.status)
	}
	if err := m.Start(ctx); err != nil {
		return nil, fmt.Errorf("opa plugin manager: %w", err)
	}
	if cfg.RemoteBundle() {
		src := cfg.bundle
		p.downloader = download.New(src.Config, m.Client(src.Service), src.Resource).
			WithCallback(p.update).
			WithBundleVerificationConfig(src.Signing).
			WithSizeLimitBytes(src.SizeLimitBytes).
			WithBundleName(cfg.bundleName).
			WithBundleParserOpts(parserOptions)
		p.downloader.Start(ctx)
	}
	return p, nil
}

// Stop stops downloading, then flushes and stops the plugins (buffered decision logs are sent).
func (p *Plugins) Stop(ctx context.Context) {
	if p.downloader != nil {
		p.downloader.Stop(ctx)
	}
	p.cfg.manager.Stop(ctx)
}

// Reload is what SIGHUP does with a bundle server's bundle: nothing, for it
// is polled (and long-polled when the server supports it); it says so.
func (p *Plugins) Reload(context.Context) error {
	p.log.Info("SIGHUP: the policy bundle comes from a bundle server and is polled; nothing to reload", "bundle", p.cfg.bundleName)
	return nil
}

// update handles one download attempt as OPA's bundle plugin does: a new
// bundle is activated, and on any failure the downloader is set back to the
// ETag of the bundle serving, so the refused one is fetched and refused
// again rather than taken as current. Downloads are one loop: updates never overlap.
func (p *Plugins) update(ctx context.Context, u download.Update) error {
	err := u.Error
	if err != nil {
		p.engine.noteLoad(fmt.Errorf("bundle %s: %w", p.cfg.bundleName, err))
		msg := "policy bundle download failed; previous bundle keeps serving"
		if downloadedButRefused(err) {
			p.engine.rejections.Add(1)
			msg = "policy bundle rejected by the downloader; previous bundle keeps serving"
		}
		p.log.Error(msg, "bundle", p.cfg.bundleName, "serving_revision", p.engine.Activation().Revision, "error", err)
	} else if u.Bundle != nil {
		err = p.engine.ActivateBundle(ctx, withoutRegoTests(u.Bundle), p.source()) // notes and logs its own outcome
	} else {
		p.engine.noteLoad(nil) // 304 Not Modified: the bundle serving is current
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(u, err)
	p.report()
	if err != nil {
		p.downloader.SetCache(p.etag)
		return err
	}
	if u.Bundle != nil {
		p.etag, p.served = u.ETag, true
	}
	return nil
}

// downloadedButRefused tells a bundle the downloader received and refused
// (not a bundle, unsigned, a bad signature or digest, too large: a
// rejection) from a failed request (no answer, or an HTTP error status).
func downloadedButRefused(err error) bool {
	var (
		status download.HTTPError
		req    *url.Error
	)
	var transport net.Error
	return !errors.As(err, &status) && !errors.As(err, &req) && !errors.As(err, &transport) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, io.ErrUnexpectedEOF)
}

// record updates the bundle status as the bundle plugin's process does.
func (p *Plugins) record(u download.Update, err error) {
	st := &p.state
	st.Metrics = u.Metrics
	if st.Metrics == nil {
		st.Metrics = metrics.New()
	}
	st.SetRequest()
	if u.Error == nil {
		st.LastSuccessfulRequest = st.LastRequest
		if u.Bundle != nil {
			st.Type, st.LastSuccessfulDownload = u.Bundle.Type(), st.LastSuccessfulRequest
		}
	}
	st.SetError(err)
	if err == nil && u.Bundle != nil {
		st.SetActivateSuccess(p.engine.Activation().Revision)
		st.SetBundleSize(u.Size)
	}
}

// report tells the status plugin of the bundle's status, as the bundle plugin's listeners do.
func (p *Plugins) report() {
	if p.status == nil {
		return
	}
	s := p.state
	p.status.BulkUpdateBundleStatus(map[string]*bundleplugin.Status{s.Name: &s})
}

// source names the downloaded bundle in Activation.Source and logs.
func (p *Plugins) source() string {
	return fmt.Sprintf("bundle %s (service %s, %s)", p.cfg.bundleName, p.cfg.bundle.Service, p.cfg.bundle.Resource)
}

// BundleState describes the configured bundle server's bundle for readiness and metrics.
type BundleState struct {
	// Remote is true when a bundle is pulled from a bundle server.
	Remote bool
	// Activated is true once a downloaded bundle has activated; before
	// that the local or embedded bundle serves and the replica is not ready.
	Activated bool
	// LastRequest is the latest download attempt; zero before the first.
	LastRequest time.Time
	// Err is why the latest attempt failed; nil when it succeeded.
	Err error
}

// BundleState returns the state of the configured bundle server's bundle.
func (p *Plugins) BundleState() BundleState {
	if p == nil || p.downloader == nil {
		return BundleState{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := BundleState{Remote: true, Activated: p.served, LastRequest: p.state.LastRequest}
	if p.state.Code != "" {
		s.Err = fmt.Errorf("%s", p.state.Message)
	}
	return s
}

// publish hands an activated bundle's policy and data to the plugin
// manager, as OPA's bundle plugin does (the compiler travels on the
// transaction's context), so that the decision-log plugin's mask and drop
// rules (data.system.log) are the serving bundle's.
func (p *Plugins) publish(compiler *ast.Compiler, data map[string]any) {
	ctx := context.Background()
	store := p.cfg.manager.Store
	params := storage.WriteParams
	params.Context = storage.NewContext()
	plugins.SetCompilerOnContext(params.Context, compiler)
	err := storage.Txn(ctx, store, params, func(txn storage.Transaction) error {
		return store.Write(ctx, txn, storage.ReplaceOp, storage.RootPath, data)
	})
	if err != nil {
		p.log.Error("decision-log mask and drop rules not updated", "error", err)
	}
}

// withoutRegoTests drops *_test.rego modules, as LoadBundle does for local bundles.
func withoutRegoTests(b *bundle.Bundle) *bundle.Bundle {
	kept := b.Modules[:0:0]
	for _, m := range b.Modules {
		if !isRegoTest(m.Path) {
			kept = append(kept, m)
		}
	}
	out := *b
	out.Modules = kept
	return &out
}

// opaLogger writes OPA's plugin logs (printf-style) to slog.
type opaLogger struct{ l *slog.Logger }

func (o opaLogger) Debug(f string, a ...any) { o.l.Debug(fmt.Sprintf(f, a...)) }
func (o opaLogger) Info(f string, a ...any)  { o.l.Info(fmt.Sprintf(f, a...)) }
func (o opaLogger) Warn(f string, a ...any)  { o.l.Warn(fmt.Sprintf(f, a...)) }
func (o opaLogger) Error(f string, a ...any) { o.l.Error(fmt.Sprintf(f, a...)) }

func (o opaLogger) WithFields(fields map[string]any) logging.Logger {
	attrs := make([]any, 0, 2*len(fields))
	for _, k := range sortedKeys(fields) {
		attrs = append(attrs, k, fields[k])
	}
	return opaLogger{o.l.With(attrs...)}
}

// GetLevel is Debug: slog's handler filters by its own level.
func (opaLogger) GetLevel() logging.Level { return logging.Debug }
func (opaLogger) SetLevel(logging.Level)  {}

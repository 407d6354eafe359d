package policy

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// collector receives OPA's decision-log uploads (gzip JSON arrays of events).
type collector struct {
	mu     sync.Mutex
	events []map[string]any
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var batch []map[string]any
	if err := json.NewDecoder(zr).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.events = append(c.events, batch...)
	c.mu.Unlock()
}

func (c *collector) all() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.events...)
}

// TestDecisionLogThroughOPAPlugin: a decision reaches an HTTP collector
// through OPA's decision-log plugin, with its fields, and the active
// bundle's mask rule (data.system.log.mask) applied.
func TestDecisionLogThroughOPAPlugin(t *testing.T) {
	col := &collector{}
	ts := httptest.NewServer(col)
	defer ts.Close()
	cfg, err := ParseOPAConfig(fmt.Appendf(nil, `
services: {collector: {url: %q}}
labels: {replica: test}
decision_logs: {service: collector, reporting: {min_delay_seconds: 1, max_delay_seconds: 1}}
`, ts.URL), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := copyBundle(t, "valid")
	mask := "package system.log\n\nmask contains \"/input/principal/user/roles\"\n"
	if err := os.WriteFile(filepath.Join(dir, "mask.rego"), []byte(mask), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := `{"revision": "fixture-mask", "roots": ["agentauthz", "system/log"]}`
	if err := os.WriteFile(filepath.Join(dir, ".manifest"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, _ := newEngine(t, dir)
	p, err := StartPlugins(context.Background(), cfg, eng, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	in := input(t, showAgent("show-agent", "viewer"))
	d, err := eng.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	d.ID = "d-1"
	start := time.Now()
	p.DecisionLog().LogDecision(context.Background(), DecisionRecord{
		Ability: "show-agent", PrincipalKind: "user", PrincipalID: "user:5", AgentID: 7, OwnerID: 3,
		Input: in, Decision: d, Revision: eng.Activation().Revision, Start: start, Latency: time.Millisecond,
	})
	waitFor(t, "the decision at the collector", func() bool { return len(col.all()) > 0 })
	ev := col.all()[0]
	custom, _ := ev["custom"].(map[string]any)
	result, _ := ev["result"].(map[string]any)
	user, _ := lookup(ev, "input", "principal", "user").(map[string]any)
	checks := []struct {
		what string
		ok   bool
	}{
		{"decision_id", ev["decision_id"] == "d-1"},
		{"labels", lookup(ev, "labels", "replica") == "test"},
		{"bundle revision", lookup(ev, "bundles", PluginName, "revision") == eng.Activation().Revision},
		{"principal", lookup(custom, "principal", "id") == "user:5" && lookup(custom, "principal", "kind") == "user"},
		{"agent and owner", custom["agent_id"] == 7.0 && custom["owner_id"] == 3.0},
		{"ability and memo", custom["ability"] == "show-agent" && custom["memo"] == false},
		{"latency", custom["latency_ns"] == float64(time.Millisecond)},
		{"result", result["allow"] == d.Allow && result["denied_by"] != nil},
		{"mask applied", user != nil && user["roles"] == nil && ev["erased"] != nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s wrong in %v", c.what, ev)
		}
	}
}

package e2e

import (
	"testing"
)

// TestMemoSizeFlag: a question asked again is answered by the decision memo
// by default and evaluated again under --memo-size=0, with the same answer
// (agentauthz_decisions_total counts both sources).
func TestMemoSizeFlag(t *testing.T) {
	t.Parallel()
	const memo = `agentauthz_decisions_total{ability="authorize",result="allow",source="memo"}`
	const eval = `agentauthz_decisions_total{ability="authorize",result="allow",source="eval"}`
	for _, c := range []struct {
		name               string
		flags              []string
		wantMemo, wantEval float64
	}{
		{"the default memo answers the repeats", nil, 2, 1},
		{"--memo-size=0 evaluates every time", []string{"--memo-size=0"}, 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := sqliteURL(t)
			seedWorld(t, db)
			srv := startServer(t, db, c.flags...)
			tok := mintCLI(t, db, "chubes-bot")
			for range 3 {
				if d := srv.authorize(t, tok.Token, "use_tools", "web_search"); !d.Allow {
					t.Fatalf("%+v, want allow", d)
				}
			}
			if got, want := [2]float64{srv.counter(t, memo), srv.counter(t, eval)}, [2]float64{c.wantMemo, c.wantEval}; got != want {
				t.Fatalf("memo and eval decisions %v, want %v", got, want)
			}
		})
	}
}

package principal

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkChainBearer(b *testing.B) {
	raw := mustToken(&testing.T{})
	chain := Chain{BearerToken{Lookup: &fakeLookup{known: raw}}, AllowAnonymous{}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.Resolve(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChainTrustedProxyAudiences(b *testing.B) {
	p := proxy(&testing.T{}, "private-site")
	chain := Chain{BearerToken{Lookup: &fakeLookup{}}, p, AllowAnonymous{}}
	r := request("10.1.2.3:4000", "X-Forwarded-Audience", "acme, beta")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.Resolve(r); err != nil {
			b.Fatal(err)
		}
	}
}

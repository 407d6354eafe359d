# agentauthz — every target runs with what `go` fetches (lint-openapi: with what npm
# fetches, so Node.js and npm); nothing else to install by hand.
# The opa CLI is pinned in go.mod as a tool: `go tool opa`.
GO      ?= go
OPA     := $(GO) tool opa
BIN     := bin/agentauthz
POLICY  := policies bundles/default
COVER   ?= 95
ADDR    ?= 127.0.0.1:8080

.PHONY: all build run test test-go test-policy lint lint-go lint-policy lint-openapi bundle bench bench-go bench-load bench-mix bench-fleet fuzz clean

all: build

build: ## build the binary into bin/
	$(GO) build -o $(BIN) ./cmd/agentauthz

run: ## run the server on the embedded SQLite default store (./agentauthz.db)
	$(GO) run ./cmd/agentauthz serve --addr $(ADDR)

test: lint test-policy test-go ## every check and test: what .ci/run calls

test-policy: ## opa test once, with the coverage floor (failures are listed from the report)
	@mkdir -p build
	@$(OPA) test $(POLICY) --coverage --threshold $(COVER) --format=json > build/policy-coverage.json; rc=$$?; \
	  pct=$$(grep -o '"coverage": *[0-9.]*' build/policy-coverage.json | tail -n 1 | grep -o '[0-9.]*$$'); \
	  if [ $$rc -ne 0 ]; then $(OPA) test $(POLICY) | grep -v '^PASS\|^---' || true; fi; \
	  echo "policy coverage: $$pct% (threshold $(COVER)%)"; exit $$rc

# -parallel 4: the end-to-end tests mostly wait on the processes they start
# (servers, the CLI, nginx, Caddy, PostgreSQL), so four at a time on two
# cores finish sooner than the default two (tests/e2e: 77 s -> 59 s here).
test-go: ## go tests with the race detector (PostgreSQL: DATABASE_URL, 127.0.0.1:5432, or a throwaway cluster)
	$(GO) test -race -count=1 -parallel 4 ./...

lint: lint-go lint-policy lint-openapi

lint-go:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

lint-policy:
	$(OPA) fmt --fail --list policies
	$(OPA) check --strict $(POLICY)

# The served OpenAPI document, as third-party tools see it: Redocly CLI's
# recommended rules (errors fail, warnings are listed) and Spectral's
# spectral:oas (any warning fails), from the npm packages pinned in
# tools/openapi. npm ci runs only when package-lock.json is newer than the
# stamp it leaves.
OPENAPI_TOOLS := tools/openapi
lint-openapi: $(OPENAPI_TOOLS)/node_modules/.installed
	cd $(OPENAPI_TOOLS) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	  npx --no-install redocly lint ../../internal/httpapi/openapi.json --format=stylish
	cd $(OPENAPI_TOOLS) && npx --no-install spectral lint --ruleset .spectral.yaml --fail-severity=warn ../../internal/httpapi/openapi.json

$(OPENAPI_TOOLS)/node_modules/.installed: $(OPENAPI_TOOLS)/package-lock.json
	cd $(OPENAPI_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# `make bundle` signs with SIGNING_KEY (a PEM private key; the default is a
# TEST-ONLY key that is public in git: sign real bundles with your own) and
# sets the manifest revision to BUNDLE_REVISION when given. BUNDLE_OUT and
# BUNDLE_SRC (the staging directory) let tests build several side by side.
SIGNING_KEY     ?= tests/testdata/bundle-signing/test-only-signing-key.pem
SIGNING_ALG     ?= RS256
BUNDLE_REVISION ?=
BUNDLE_OUT      ?= build/agentauthz-bundle.tar.gz
BUNDLE_SRC      ?= build/bundle-src

bundle: ## build the default policy bundle, signed with SIGNING_KEY, as BUNDLE_OUT
	@rm -rf $(BUNDLE_SRC) && mkdir -p $(BUNDLE_SRC)/policies $(dir $(BUNDLE_OUT))
	@cp bundles/default/data.json bundles/default/.manifest $(BUNDLE_SRC)/
	@cp -r bundles/default/agentauthz $(BUNDLE_SRC)/
	@cd policies && find agentauthz -name '*.rego' ! -name '*_test.rego' -exec cp --parents {} $(abspath $(BUNDLE_SRC))/policies/ \;
	$(OPA) build -b $(BUNDLE_SRC) -o $(BUNDLE_OUT) \
	  --signing-key $(SIGNING_KEY) --signing-alg $(SIGNING_ALG) $(if $(BUNDLE_REVISION),--revision $(BUNDLE_REVISION))
	@echo "built $(BUNDLE_OUT) (signed with $(SIGNING_KEY))"

# The load harness's mixed workload (tests/README.md): token counts, and
# where perf profiles of agentauthz under it go (empty: no profile).
BENCH_MIX_SIZES ?= 1000,10000,100000
BENCH_PROFILE   ?= build/profile

bench: bench-go bench-load bench-fleet ## Go benchmarks and the HTTP load harness (repeated question, fresh evaluations, cold path, the mix, the fleet)

# BenchmarkFloor (tests/load): the mix's questions in process, our engine beside
# OPA's rego API on our bundle, on the minimal three-ceiling policy and on a constant.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(GO) test -run '^$$' -bench Floor -benchmem ./tests/load/

bench-load: build ## the load harness: about 9 minutes with the default sizes and windows
	$(GO) run ./tests/load --mix-sizes=$(BENCH_MIX_SIZES) --profile=$(BENCH_PROFILE) $(LOADFLAGS)

bench-mix: build ## only the mixed workload (about 6 minutes)
	$(GO) run ./tests/load --repeated=false --mix-sizes=$(BENCH_MIX_SIZES) --profile=$(BENCH_PROFILE) $(LOADFLAGS)

bench-fleet: build ## three replicas on one PostgreSQL under load: revocation-to-refusal p50/p99/max, cached vs uncached (needs PostgreSQL: $$DATABASE_URL or 127.0.0.1:5432; about a minute)
	$(GO) run ./tests/load --fleet --concurrency=16 $(LOADFLAGS)

fuzz: ## fuzz targets for a while (FUZZTIME, default 30s), then long seeded runs of the property tests
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s} ./internal/token/
	$(GO) test -run '^$$' -fuzz FuzzParseRef -fuzztime $${FUZZTIME:-30s} ./internal/principal/
	$(GO) test -run '^$$' -fuzz FuzzStrictDecode -fuzztime $${FUZZTIME:-30s} ./internal/httpapi/
	$(GO) test -count=1 -run TestRandomWorldInvariants ./internal/authz/ -invariants.worlds=$${INVARIANT_WORLDS:-24}
	$(GO) test -count=1 -run TestNoEscalationThroughManagement ./internal/authz/ -v \
	  -escalation.sequences=$${ESCALATION_SEQUENCES:-400} -escalation.seed=$${ESCALATION_SEED:-1}

clean:
	rm -rf bin build

# agentauthz — every target runs with what `go` fetches; nothing to install by hand.
# The opa CLI is pinned in go.mod as a tool: `go tool opa`.
GO      ?= go
OPA     := $(GO) tool opa
BIN     := bin/agentauthz
POLICY  := policies bundles/default
COVER   ?= 95
ADDR    ?= 127.0.0.1:8080

.PHONY: all build run test test-go test-policy lint lint-go lint-policy bundle bench bench-go bench-load bench-mix fuzz clean

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

test-go: ## go tests with the race detector (PostgreSQL: DATABASE_URL, 127.0.0.1:5432, or a throwaway cluster)
	$(GO) test -race -count=1 ./...

lint: lint-go lint-policy

lint-go:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

lint-policy:
	$(OPA) fmt --fail --list policies
	$(OPA) check --strict $(POLICY)

bundle: ## build the default policy bundle as build/agentauthz-bundle.tar.gz
	@rm -rf build/bundle-src && mkdir -p build/bundle-src/policies
	@cp bundles/default/data.json bundles/default/.manifest build/bundle-src/
	@cp -r bundles/default/agentauthz build/bundle-src/
	@cd policies && find agentauthz -name '*.rego' ! -name '*_test.rego' -exec cp --parents {} ../build/bundle-src/policies/ \;
	$(OPA) build -b build/bundle-src -o build/agentauthz-bundle.tar.gz
	@echo "built build/agentauthz-bundle.tar.gz"

# The load harness's mixed workload (tests/README.md): token counts, and
# where perf profiles of agentauthz under it go (empty: no profile).
BENCH_MIX_SIZES ?= 1000,10000,100000
BENCH_PROFILE   ?= build/profile

bench: bench-go bench-load ## Go benchmarks and the HTTP load harness (repeated question, fresh evaluations, cold path, the mix)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

bench-load: build ## the load harness: about 6 minutes with the default sizes and windows
	$(GO) run ./tests/load --mix-sizes=$(BENCH_MIX_SIZES) --profile=$(BENCH_PROFILE) $(LOADFLAGS)

bench-mix: build ## only the mixed workload
	$(GO) run ./tests/load --repeated=false --mix-sizes=$(BENCH_MIX_SIZES) --profile=$(BENCH_PROFILE) $(LOADFLAGS)

fuzz: ## fuzz targets for a while (FUZZTIME, default 30s), then long seeded runs of the property tests
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s} ./internal/token/
	$(GO) test -run '^$$' -fuzz FuzzParseRef -fuzztime $${FUZZTIME:-30s} ./internal/principal/
	$(GO) test -run '^$$' -fuzz FuzzStrictDecode -fuzztime $${FUZZTIME:-30s} ./internal/httpapi/
	$(GO) test -count=1 -run TestRandomWorldInvariants ./internal/authz/ -invariants.worlds=$${INVARIANT_WORLDS:-24}
	$(GO) test -count=1 -run TestNoEscalationThroughManagement ./internal/authz/ -v \
	  -escalation.sequences=$${ESCALATION_SEQUENCES:-400} -escalation.seed=$${ESCALATION_SEED:-1}

clean:
	rm -rf bin build

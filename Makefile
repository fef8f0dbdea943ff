# Ficus — make targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/.bin
STATICCHECK_VERSION := v0.8.2
OASDIFF_VERSION := v1.35.0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X github.com/ficus-gw/ficus/internal/svcmetrics.linkedRevision=$(REVISION)
PKGS := ./...
# The demo's log level (debug, info, warn, error): make run LOG_LEVEL=debug
LOG_LEVEL ?= info
FUZZTIME ?= 20s
# Debian's PostgreSQL 15: the fleet demo's control plane and the tests that
# start a real one. Installed with apt-get when missing.
PG_BIN ?= /usr/lib/postgresql/15/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/ficus
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ficus ./cmd/ficus

.PHONY: build-static
build-static: ## build bin/ficus-static: CGO_ENABLED=0, trimmed paths (what the container image holds)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o bin/ficus-static ./cmd/ficus

.PHONY: image
image: build-static ## build the container image localhost/ficus:VERSION with podman (deploy/Containerfile: FROM scratch, non-root)
	podman build -f deploy/Containerfile -t localhost/ficus:$(VERSION) .

.PHONY: run
run: build ## start the whole demo on loopback (legacy, new services, gateway); Ctrl-C stops it; LOG_LEVEL=debug for every request
	./bin/ficus demo --data data --log-level $(LOG_LEVEL)

.PHONY: run-fleet
run-fleet: build postgres ## the demo with 3 gateway replicas sharing one PostgreSQL control plane
	./bin/ficus demo --data data --replicas 3 --log-level $(LOG_LEVEL)

.PHONY: postgres
postgres: ## install Debian's PostgreSQL 15 with apt-get when $(PG_BIN)/initdb is missing
	@if [ ! -x "$(PG_BIN)/initdb" ]; then \
	  echo "PostgreSQL not found in $(PG_BIN): installing Debian's postgresql with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; \
	fi

.PHONY: test
test: postgres ## run every test with the race detector (installs PostgreSQL first when missing)
	$(GO) test -race -count=1 -shuffle=on -timeout 20m $(PKGS)

$(BIN)/oasdiff:
	GOBIN=$(BIN) GOFLAGS= $(GO) install github.com/oasdiff/oasdiff@$(OASDIFF_VERSION)

SPECTRAL := contracts/spectral/node_modules/.bin/spectral
CONTRACT_TOOLS := OASDIFF=$(BIN)/oasdiff SPECTRAL=$(CURDIR)/$(SPECTRAL)

# Spectral is pinned by contracts/spectral/package-lock.json.
$(SPECTRAL): contracts/spectral/package.json contracts/spectral/package-lock.json
	cd contracts/spectral && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: contract
contract: $(BIN)/oasdiff $(SPECTRAL) ## each spec against its published baseline (oasdiff, ERR) + Spectral (0 warnings), then prove the gate fails on seeded violations
	$(CONTRACT_TOOLS) contracts/check.sh
	$(CONTRACT_TOOLS) contracts/selftest.sh

PACT_VERIFIER := contracts/pact/node_modules/.bin/pact-verifier

# pact-verifier is pinned by contracts/pact/package-lock.json.
$(PACT_VERIFIER): contracts/pact/package.json contracts/pact/package-lock.json
	cd contracts/pact && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

PRISM := contracts/prism/node_modules/.bin/prism

# Prism is pinned by contracts/prism/package-lock.json.
$(PRISM): contracts/prism/package.json contracts/prism/package-lock.json
	cd contracts/prism && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: pact
pact: build $(PACT_VERIFIER) $(PRISM) ## Pact verification (HTTP and message pacts) and the Prism proxy check against every provider; then prove both fail on seeded violations
	contracts/pact/verify.sh
	contracts/pact/selftest.sh
	contracts/prism/check.sh
	contracts/prism/selftest.sh

# Publishing a baseline is a release of the contract: run it deliberately,
# and say what changed for consumers in contracts/CHANGELOG.md.
.PHONY: publish-contract
publish-contract: ## copy API's contract (catalog, orders or events) to its published baseline: make publish-contract API=catalog
	@case "$(API)" in \
	  catalog) cp newsvc/catalog/openapi.yaml contracts/published/catalog-v1.yaml ;; \
	  orders) cp newsvc/order/openapi.yaml contracts/published/orders-v1.yaml ;; \
	  events) rm -rf contracts/published/events && mkdir -p contracts/published/events && \
	    cp -r contracts/events/asyncapi.yaml contracts/events/schemas contracts/published/events/ ;; \
	  *) echo "usage: make publish-contract API=catalog|orders|events"; exit 2 ;; \
	esac; echo "published $(API); record the change for consumers in contracts/CHANGELOG.md"

.PHONY: check-dashboards
check-dashboards: build ## promtool rules/tests, dashboard schema, and every panel and alert queried on a real Prometheus scraping the demo
	dashboards/check.sh

$(BIN)/staticcheck:
	GOBIN=$(BIN) GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: lint
lint: $(BIN)/staticcheck ## go vet, staticcheck (pinned) and gofmt
	$(GO) vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

.PHONY: bench
bench: ## loopback load comparison (direct, bare Fiber, nginx, Ficus) + Go benchmarks; results in docs/benchmarks.md
	GO=$(GO) bench/run.sh

.PHONY: fuzz
fuzz: ## run every native fuzz target for FUZZTIME each (default 20s); goes on past a failure and lists every failing target at the end
	@failed=""; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    out=$$(mktemp); ok=0; \
	    for try in 1 2; do \
	      if $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1 | tee $$out; test $${PIPESTATUS[0]} -eq 0; then ok=1; break; fi; \
	      grep -q 'Failing input written to' $$out && break; \
	      grep -q 'context deadline exceeded' $$out || break; \
	      echo "fuzz engine timed out at the end of FUZZTIME without a failing input (a Go toolchain timing flake on a busy machine): running $$f once more"; \
	    done; rm -f $$out; \
	    [ $$ok = 1 ] || failed="$$failed $$pkg:$$f"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz targets that failed (inputs saved under each package's testdata/fuzz; plain go test replays them):"; \
	  for f in $$failed; do echo "  $$f"; done; exit 1; \
	fi; echo "every fuzz target passed"

SOAK ?= 2m

.PHONY: soak
soak: ## soak the gateway for SOAK (default 2m, at most 15m) with mixed traffic and faults; fails if RSS or goroutines grow (not part of test)
	FICUS_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestSoak$$' -timeout 20m -v ./gateway/

.PHONY: cover
cover: ## test with coverage; writes cover.out and prints the total
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS)
	$(GO) tool cover -func=cover.out | tail -1

.PHONY: clean
clean: ## remove build output and demo data
	rm -rf bin data cover.out bench-go.txt

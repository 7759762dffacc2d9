# edgeway: `make run` serves the bundled examples, `make test` passes the tests.
SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
DENO_VERSION ?= 2.9
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN := $(CURDIR)/bin/edgeway
# Deno from PATH when present, else a project-local copy from the npm registry.
DENO ?= $(shell command -v deno 2>/dev/null || echo $(TOOLS)/node_modules/.bin/deno)

.PHONY: all build deno run test test-unit test-fuzz test-e2e vet fmt bench-go bench loadtest clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) .

$(TOOLS)/node_modules/.bin/deno:
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --no-audit --no-fund --silent deno@$(DENO_VERSION)

deno: $(if $(filter $(TOOLS)/%,$(DENO)),$(DENO),)
	@$(DENO) --version | head -1

run: build deno
	$(BIN) serve --dev --functions examples/supabase/functions --host 127.0.0.1 --port 3100 --deno $(DENO)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

test: vet test-unit test-fuzz test-e2e

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

# Every Go native fuzz target of the module runs FUZZTIME inputs on top of its
# seed corpus (the seeds alone already run in test-unit). The budget is a count,
# not a duration: Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" when a duration expires on a busy machine
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 30000x
test-fuzz:
	@set -eo pipefail; \
	$(GO) test -list '^Fuzz' $$($(GO) list ./... | grep -v /e2e) | \
	awk '/^Fuzz/ { f[n++] = $$1 } /^ok/ { for (i = 0; i < n; i++) print $$2, f[i]; n = 0 }' | \
	while read -r pkg fn; do \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1 | grep -v '^fuzz: elapsed'; \
	done

test-e2e: build deno
	EDGEWAY_BIN=$(BIN) EDGEWAY_TEST_DENO=$(DENO) $(GO) test -count=1 -timeout 15m ./e2e/...

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /e2e)

bench: build deno
	./bench/run.sh

loadtest: build deno
	./loadtest/run.sh

clean:
	rm -rf bin

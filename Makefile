# edgeway: `make run` serves the bundled examples, `make test` passes the tests.
SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
DENO_VERSION ?= 2.9
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN := $(CURDIR)/bin/edgeway
# Deno from PATH when present, else a project-local copy from the npm registry.
DENO ?= $(shell command -v deno 2>/dev/null || echo $(TOOLS)/node_modules/.bin/deno)

.PHONY: all build deno run test test-unit test-fuzz test-e2e test-embed test-k8s vet fmt bench-go bench loadtest clean install test-install

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
	cd examples/embed && $(GO) vet ./...

test: vet test-unit test-fuzz test-install test-k8s test-e2e test-embed

# The worker package's tests run real Deno: the project-local copy when
# that is the one there is (they skip without any).
test-unit:
	EDGEWAY_TEST_DENO=$$(test -x "$(DENO)" && echo "$(DENO)") $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

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

# examples/kubernetes: every manifest decoded strictly into the Kubernetes
# API types and its cross-references checked (ports, probes, volumes, the
# Redis Service, flags against `edgeway help`). A module of its own, so the
# binary does not depend on k8s.io/api.
test-k8s: build
	cd examples/kubernetes/check && $(GO) vet ./... && EDGEWAY_BIN=$(BIN) $(GO) test -count=1 ./...

test-e2e: build deno
	EDGEWAY_BIN=$(BIN) EDGEWAY_TEST_DENO=$(DENO) $(GO) test -count=1 -timeout 15m ./e2e/...

# examples/embed is a module of its own (a replace directive points at this
# repository): its programs are built and run against real Deno.
test-embed: deno
	cd examples/embed && $(GO) vet ./... && EDGEWAY_TEST_DENO=$(DENO) $(GO) test -count=1 ./...

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /e2e)

bench: build deno
	./bench/run.sh

loadtest: build deno
	./loadtest/run.sh

clean:
	rm -rf bin

# `make install` (as root; DESTDIR for staging a package): the binary in
# BINDIR, the Deno it was tested with in LIBDIR/deno (the unit names it, so
# the service does not depend on PATH), the systemd unit with these paths,
# the sysusers.d entry of the edgeway user, and /etc/edgeway/env (secrets;
# created from the example only when absent, never overwritten).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib/edgeway
SYSCONFDIR ?= /etc
UNITDIR ?= $(SYSCONFDIR)/systemd/system
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d
install: build deno
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/edgeway
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/edgeway
	install -m 0755 "$$($(DENO) eval --no-config 'console.log(Deno.execPath())')" $(DESTDIR)$(LIBDIR)/deno
	sed -e 's|/usr/local/bin/edgeway|$(BINDIR)/edgeway|g' -e 's|/usr/local/lib/edgeway/deno|$(LIBDIR)/deno|g' \
		-e 's|/etc/edgeway/|$(SYSCONFDIR)/edgeway/|g' examples/systemd/edgeway.service > $(DESTDIR)$(UNITDIR)/edgeway.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/edgeway.service
	install -m 0644 examples/systemd/edgeway.sysusers $(DESTDIR)$(SYSUSERSDIR)/edgeway.conf
	install -m 0644 examples/systemd/edgeway.env $(DESTDIR)$(SYSCONFDIR)/edgeway/env.example
	test -e $(DESTDIR)$(SYSCONFDIR)/edgeway/env || install -m 0600 examples/systemd/edgeway.env $(DESTDIR)$(SYSCONFDIR)/edgeway/env
	@echo "installed; as root: systemd-sysusers && systemctl daemon-reload && systemctl enable --now edgeway"

# Installs into a temporary PREFIX (paths resolve, so systemd checks the unit
# as installed), checks a DESTDIR install writes only under DESTDIR, and has
# systemd-analyze verify the unit and systemd-sysusers create the user under
# a scratch root. Any diagnostic from systemd-analyze fails: it exits 0 on
# lines it ignores (such as a comment after a value).
test-install: build deno
	@set -eo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) -s install PREFIX=$$tmp/usr/local SYSCONFDIR=$$tmp/etc >/dev/null; \
	unit=$$tmp/etc/systemd/system/edgeway.service; \
	$$tmp/usr/local/bin/edgeway version >/dev/null; $$tmp/usr/local/lib/edgeway/deno --version >/dev/null; \
	grep -q "^ExecStart=$$tmp/usr/local/bin/edgeway serve .*--deno $$tmp/usr/local/lib/edgeway/deno" $$unit; \
	grep -q "^EnvironmentFile=-$$tmp/etc/edgeway/env$$" $$unit; \
	test "$$(stat -c %a $$tmp/etc/edgeway/env)" = 600; \
	echo keep > $$tmp/etc/edgeway/env; $(MAKE) -s install PREFIX=$$tmp/usr/local SYSCONFDIR=$$tmp/etc >/dev/null; \
	test "$$(cat $$tmp/etc/edgeway/env)" = keep || { echo "make install overwrote the env file"; exit 1; }; \
	$(MAKE) -s install DESTDIR=$$tmp/stage >/dev/null; \
	grep -q '^ExecStart=/usr/local/bin/edgeway serve' $$tmp/stage/etc/systemd/system/edgeway.service; \
	test -x $$tmp/stage/usr/local/bin/edgeway -a -x $$tmp/stage/usr/local/lib/edgeway/deno; \
	if command -v systemd-analyze >/dev/null 2>&1; then \
		out=$$(systemd-analyze verify $$unit 2>&1) || { echo "$$out"; exit 1; }; \
		if [ -n "$$out" ]; then echo "systemd-analyze verify $$unit:"; echo "$$out"; exit 1; fi; \
		mkdir -p $$tmp/root/etc; systemd-sysusers --root=$$tmp/root $$tmp/etc/sysusers.d/edgeway.conf >/dev/null 2>&1; \
		grep -q '^edgeway:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$$' $$tmp/root/etc/passwd; \
		echo "test-install: make install and the systemd unit verify"; \
	else echo "test-install: systemd-analyze not installed, unit not verified (.ci/run installs it)"; fi

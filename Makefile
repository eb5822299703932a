# callmesh — `make run` starts the whole mesh, `make test` proves it.

CARGO      ?= cargo
PROFILE    ?= release
BUF        ?= npx --yes @bufbuild/buf@1.75.0
VENV       ?= .venv
PYTHON     := $(VENV)/bin/python
NEXTEST    := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test test-deps fmt fmt-check clippy lint unit bench eval

## run: build and start the gateway (:8080) and the five services (:50051-50055); Ctrl-C stops all
run: build
	./target/$(PROFILE)/callmesh up

build:
	$(CARGO) build --profile $(PROFILE) -p callmesh

## test: formatting, lints (clippy, buf) and the whole test suite, on SQLite and PostgreSQL
test: fmt-check clippy lint test-deps unit

unit:
ifeq ($(NEXTEST),yes)
	CALLMESH_PYTHON=$(abspath $(PYTHON)) $(CARGO) nextest run --workspace --no-fail-fast
else
	CALLMESH_PYTHON=$(abspath $(PYTHON)) $(CARGO) test --workspace --no-fail-fast
endif

## test-deps: independent clients the tests drive: Python grpcio + reflection and Twilio's own
## validator (into .venv), and Playwright for the dashboard test (Debian's chromium must be there)
test-deps: $(VENV)/.installed cli/tests/browser/node_modules/.installed

$(VENV)/.installed: cli/tests/support/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r cli/tests/support/requirements.txt
	touch $@

cli/tests/browser/node_modules/.installed: cli/tests/browser/package.json cli/tests/browser/package-lock.json
	cd cli/tests/browser && npm ci --no-audit --no-fund --silent
	touch $@

## bench: ingest throughput and latency, initiation latency, on loopback; the analyzer's time
## and memory on a typical and a 10,000-turn call (release build)
bench:
	$(CARGO) bench -p callmesh --bench ingest
	$(CARGO) bench -p callmesh-analysis --bench analyze

## eval: the rule-based analyzer against the labelled calls: the dev and the frozen test split,
## each reported separately (EVAL_SETS="eval/calls.json" for the in-sample seed set;
## EVAL_FLAGS=--verbose lists disagreements, never a test split's)
EVAL_SETS  ?= eval/dev.json eval/test.json
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
lint:
	$(BUF) lint

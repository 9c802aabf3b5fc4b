# lbgp — the two commands a newcomer needs are `make demo` and `make test`.
# Everything they need is installed by the targets below, into the checkout.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VENV_LINT := .venv-lint
VENV_BUILD := .venv-build
EMULATOR_STAMP := $(VENV)/.installed
LINT_STAMP := $(VENV_LINT)/.installed
BUILD_STAMP := $(VENV_BUILD)/.installed
FUNCTIONS := vpc-route-injector tgw-route-propagator failover-watcher

export LBGP_EMULATOR_PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(EMULATOR_STAMP): tests/emulator/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

$(LINT_STAMP): scripts/lint-requirements.txt
	$(PYTHON) -m venv $(VENV_LINT)
	$(VENV_LINT)/bin/pip install --quiet --disable-pip-version-check -r scripts/lint-requirements.txt
	touch $@

$(BUILD_STAMP): scripts/build-requirements.txt
	$(PYTHON) -m venv $(VENV_BUILD)
	$(VENV_BUILD)/bin/pip install --quiet --disable-pip-version-check -r scripts/build-requirements.txt
	touch $@

.PHONY: emulator
emulator: $(EMULATOR_STAMP) ## Install the pinned AWS emulator (moto) into .venv

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: check
check: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: test-fidelity
test-fidelity: $(EMULATOR_STAMP) ## Tests of the emulator fidelity layer (each fails on plain moto)
	$(VENV)/bin/python -m pytest -q tests/emulator

.PHONY: test-rust
test-rust: $(EMULATOR_STAMP)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets

.PHONY: lint
lint: $(LINT_STAMP) $(BUILD_STAMP) ## cfn-lint, checkov and sam validate --lint on the templates
	bash scripts/lint.sh
	@# SAM's own check of template.yaml (the transform, then cfn-lint): offline, no credentials.
	SAM_CLI_TELEMETRY=0 $(VENV_BUILD)/bin/sam validate --lint --template-file template.yaml --region us-east-1

.PHONY: test
test: check test-fidelity test-rust lint ## Everything CI runs: format, clippy, fidelity, unit, emulator and template tests

.PHONY: chaos
chaos: $(EMULATOR_STAMP) ## Reliability soak: more seeds, bigger meshes, higher fault rates (LBGP_CHAOS=1)
	$(CARGO) build --workspace --bins
	LBGP_CHAOS=1 $(CARGO) test -p lbgp-tests --test reliability -- --nocapture
	LBGP_CHAOS=1 $(CARGO) test -p lbgp-core --test protocol_model -- --nocapture

.PHONY: build
build: $(BUILD_STAMP) ## arm64 Lambda zips of the three functions (cargo-lambda, release)
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip $(addprefix --bin ,$(FUNCTIONS))

.PHONY: demo
demo: $(EMULATOR_STAMP) ## Sample 3-region mesh in the emulator, driven through the Lambda Runtime API
	$(CARGO) build --bins
	$(CARGO) run --quiet -p lbgp-tests --bin lbgp-demo
	$(CARGO) run --quiet -p lbgp-tests --bin lbgp-demo-migration
	$(CARGO) run --quiet -p lbgp-tests --bin lbgp-demo-accounts

.PHONY: demo-accounts
demo-accounts: $(EMULATOR_STAMP) ## The accounts act alone: a mesh of 2 regions and 3 accounts, a denied member frozen
	$(CARGO) run --quiet -p lbgp-tests --bin lbgp-demo-accounts

.PHONY: demo-migration
demo-migration: $(EMULATOR_STAMP) ## The migration act alone: legacy overlay, trace, cutover, trace, rollback
	$(CARGO) run --quiet -p lbgp-tests --bin lbgp-demo-migration

.PHONY: bench
bench: $(EMULATOR_STAMP) $(BUILD_STAMP) ## Benchmarks, measured side by side (release builds); regenerates docs/BENCHMARKS.md
	mkdir -p target/bench && date +%s.%N > target/bench/started
	@# The arm64 build is the slow part: an existing zip is reused (the doc flags one older than the sources).
	@for f in $(FUNCTIONS); do [ -f target/lambda/$$f/bootstrap.zip ] || { $(MAKE) --no-print-directory build; break; }; done
	@# Section 4's PIE check: the injector linked once more without PIE (same code and profile,
	@# only its own crate rebuilt), kept in target/bench/no-pie; the build below relinks the PIE
	@# binary that ships. lbgp-sdk-floor is built with the functions: it shares their SDK build.
	$(CARGO) rustc --release -p vpc-route-injector --bin vpc-route-injector -- -C link-arg=-no-pie
	mkdir -p target/bench/no-pie && cp target/release/vpc-route-injector target/bench/no-pie/
	$(CARGO) build --release -p vpc-route-injector -p tgw-route-propagator -p failover-watcher -p lbgp-sdk-floor --bins
	@# Section 4's floor, a bare lambda_runtime echo (a crate of its own: it builds only
	@# lambda_runtime and tokio), in the same release profile; a command of its own, so cargo
	@# never unifies its features into the functions'.
	$(CARGO) build --release -p lbgp-echo
	$(CARGO) run --quiet --profile bench-fast -p lbgp-tests --bin lbgp-bench -- --out docs/BENCHMARKS.md

.PHONY: deploy
deploy: $(BUILD_STAMP) ## Install the AWS SAM CLI (into .venv-build), sam build the three arm64 functions, sam deploy --guided
	@# sam build: BuildMethod rust-cargolambda runs `cargo lambda build --release --arm64 --bin <function>`
	@# with this venv's cargo-lambda and zig; SAM_BUILD_MODE=debug builds them unoptimised.
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 \
		sam build --template-file template.yaml --beta-features
	@# Asks for the stack name, region and parameters the first time, saves them in samconfig.toml.
	PATH="$(CURDIR)/$(VENV_BUILD)/bin:$$PATH" SAM_CLI_TELEMETRY=0 \
		sam deploy --guided --capabilities CAPABILITY_IAM
# prodready — every entry point a person or CI uses. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL := .local
STAMP := $(VENV)/.installed

.PHONY: help venv binaries browser lint unit test generate cluster cluster-down demo bench krew-archive clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP) ## create .venv with the pinned Python dependencies

binaries: ## build (once) the control plane's binaries into the cache and link them in .local/bin
	@mkdir -p $(LOCAL)
	@bin_dir=$$(tests/cluster/build.sh) && ln -sfn "$$bin_dir" $(LOCAL)/bin && echo "binaries: $(LOCAL)/bin -> $$bin_dir"

generate: venv binaries ## regenerate generated files (CRDs, chart CRDs, manifests, docs tables)
	$(BIN)/python -m prodready crds > crds/prodready.io_productionservices.yaml
	$(BIN)/python -m tests.generate

browser: ## headless Chromium for the page tests: Debian's chromium + chromium-driver, installed when missing and apt-get is usable (else those tests skip)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "browser: $$(command -v chromium), $$(command -v chromedriver)"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y --no-install-recommends chromium chromium-driver \
		|| { apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; } \
		|| echo "browser: apt-get could not install chromium; the browser tests will skip"; \
	else \
		echo "browser: no chromium and no apt-get as root; the browser tests will skip"; \
	fi

lint: venv ## ruff, ruff format, mypy --strict, import layers (lint-imports), hadolint, helm lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict operator/prodready
	$(BIN)/lint-imports
	@if [ -f Dockerfile ]; then $(BIN)/hadolint Dockerfile && echo "hadolint: clean"; fi
	@if [ -f charts/prodready/Chart.yaml ]; then $(LOCAL)/bin/helm lint --strict charts/prodready; fi

unit: venv ## the fast tests (no cluster)
	$(BIN)/pytest -q tests/unit

test: venv binaries browser lint ## everything CI runs: lint, unit and e2e tests against the real control plane, coverage >= 90%
	PRODREADY_BIN_DIR=$(CURDIR)/$(LOCAL)/bin $(BIN)/pytest --cov --cov-report=term tests

cluster: venv binaries ## start the local control plane in the background; writes .local/kubeconfig
	$(BIN)/python -m tests.cluster up --dir $(LOCAL)

cluster-down: ## stop the local control plane and everything `make demo` started
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tests.cluster down --dir $(LOCAL); fi

demo: cluster ## control plane + operator + webhook: examples/ made Ready, a denial, warnings, a report
	$(BIN)/python -m tests.cluster.demo --dir $(LOCAL)

bench: venv binaries ## benchmarks against peers (see benchmarks/RESULTS.md)
	PRODREADY_BIN_DIR=$(CURDIR)/$(LOCAL)/bin $(BIN)/python -m benchmarks

krew-archive: venv ## build dist/kubectl-prodready-v<version>.tar.gz (the krew launcher) and update plugins/krew/prodready.yaml
	$(BIN)/python plugins/krew/build.py dist

clean: cluster-down ## remove the venv and local state (the binary cache stays)
	rm -rf $(VENV) $(LOCAL)

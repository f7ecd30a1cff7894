# eks-bluegreen: every entry point sets up what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
NODE_STAMP := node_modules/.installed
export PYTHONPATH := $(CURDIR)/layers/bluegreen:$(CURDIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv test unit lint validate kube dataplane kube-gomod chromium demo bench build local push invoke execute lock openapi rbac screenshot clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): requirements-dev.txt layers/bluegreen/requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STAMP) ## create/update the project virtualenv (.venv)

$(SAM_STAMP): requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: $(STAMP) $(SAM_STAMP) $(NODE_STAMP) ## sam validate --lint, cfn-lint, ASL validation, layer installs for the Lambda platform
	bash scripts/validate.sh

kube: ## build the real control plane from Go modules into .cache/kube (once: 15-30 min cold on 2 cores)
	bash local/kube/build.sh

dataplane: ## build the local data plane into .cache/dataplane: AWS Load Balancer Controller, Traefik (Go modules), Prometheus (Debian) (once: ~15 min cold)
	bash local/kube/build-dataplane.sh

kube-gomod: ## regenerate local/kube/go.mod + go.sum from k8s.io/kubernetes's own go.mod
	$(PYTHON) local/kube/gomod.py

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a
# browser of its own). A file target: nothing to do once the binary is there.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

chromium: $(CHROMIUM) ## install Debian's chromium for the dashboard's browser tests (once)

unit: $(STAMP) kube dataplane $(CHROMIUM) ## the pytest suite only (on the emulator and on the real control plane)
	$(PY) -m pytest -q

test: lint validate unit ## every test: lint, template/ASL validation, the pytest suite

demo: $(STAMP) $(if $(filter kube,$(CLUSTER)),kube,) ## the whole flow, locally, on the embedded emulators: make demo [CLUSTER=kube] [ROUTER=alb|gateway]
	$(PY) -m local.demo $(if $(CLUSTER),--cluster $(CLUSTER),) $(if $(ROUTER),--router $(ROUTER),)

bench: $(STAMP) ## benchmarks, printed as tables
	$(PY) -m bench

build: $(SAM_STAMP) ## sam build
	$(SAM_VENV)/bin/sam build --language-extensions

local: $(STAMP) $(if $(filter kube,$(CLUSTER)),kube,) ## run the local stack (moto, cluster, API endpoint) until Ctrl-C: make local [CLUSTER=kube] [ROUTER=alb|gateway]
	$(PY) -m local.stack $(if $(CLUSTER),--cluster $(CLUSTER),) $(if $(ROUTER),--router $(ROUTER),) $(ARGS)

push: $(STAMP) ## simulate an ECR push into the running local stack: make push TAG=dev [APP=payments] [BROKEN=1 | ERRORS=1 | SLOW=1]
	$(VENV)/bin/bluegreen $(if $(APP),--app $(APP),) push $(TAG) $(if $(BROKEN),--broken,) $(if $(ERRORS),--errors,) $(if $(SLOW),--slow,)

invoke: $(STAMP) ## invoke a handler against the running local stack: make invoke FN=ecr_push EVENT=events/x.json
	$(PY) -m local.invoke $(FN) $(EVENT)

execute: $(STAMP) ## start the deploy flow on the running local stack, as the console does: make execute INPUT=events/deploy_flow/x.json [NAME=id]
	$(PY) -m local.execute $(INPUT) $(if $(NAME),--name $(NAME),)

lock: ## regenerate requirements-dev.txt from requirements-dev.in
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Every package of the development environment, pinned exactly (pip freeze of"; \
	  echo "# requirements-dev.in). Regenerate with: make lock"; \
	  $(VENV)/bin/pip freeze --exclude-editable; } > requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

openapi: $(STAMP) ## regenerate docs/openapi.json from the services API code
	$(PY) -m functions.services_api.openapi > docs/openapi.json

rbac: $(STAMP) ## regenerate deploy/kubernetes/rbac.yaml from the CLI's Role (cli/bluegreen_cli/manifests.py)
	$(PY) -m bluegreen_cli.manifests > deploy/kubernetes/rbac.yaml

screenshot: $(STAMP) $(CHROMIUM) ## regenerate docs/dashboard.png: the dashboard while a deploy's rollout runs, on an in-process local stack
	$(PY) -m scripts.dashboard_screenshot

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) node_modules .aws-sam .local-stack

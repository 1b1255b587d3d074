# Single entry point. `make lab` runs the stack on local containers; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
S ?= base
ENV ?=

.PHONY: help venv lint unit test molecule lab lab-destroy bench secrets

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The controller's Python: 3.12 or newer for ansible-core 2.21 (scripts/controller-python.sh finds one, or names
# what to do). --clear rebuilds a virtualenv made with another Python.
$(VENV)/.installed: pyproject.toml
	py=$$(scripts/controller-python.sh) && "$$py" -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $@

venv: $(VENV)/.installed  ## Create the virtualenv with the pinned tools

lint: venv  ## Run yamllint, ansible-lint, ruff and the argument_specs check
	scripts/lint.sh

unit: venv  ## Run the unit tests (filter plugins, scripts)
	pytest -q -n auto --dist worksteal tests/unit

test: venv  ## Lint, unit tests, then every Molecule scenario (SCENARIOS="a b" to pick)
	scripts/run-tests.sh

molecule: venv  ## Run one Molecule scenario: make molecule S=postgres
	scripts/docker-engine.sh
	molecule test -s $(S)

lab: venv  ## Create the lab containers and converge playbooks/site.yml on them
	scripts/docker-engine.sh
	ansible-playbook playbooks/lab.yml
	ansible-playbook playbooks/site.yml
	scripts/lab-info.sh

lab-destroy: venv  ## Remove the lab containers
	ansible-playbook playbooks/lab.yml -e lab_container_state=absent
	rm -rf .cache/facts

bench: venv  ## Run the benchmarks (they print figures); one or some: make bench B="load_multitenant lab_converge"
	@for b in $(if $(B),$(B:%=benchmarks/%.sh),benchmarks/*.sh); do echo "=== $$b"; $$b || exit 1; done

secrets: venv  ## Create the vaulted master key of an environment: make secrets ENV=production
	scripts/new-vault.sh $(ENV)

.PHONY: security audit scan deploy-check release

security: venv  ## Offline scanners: bandit, semgrep, detect-secrets, actionlint, check-jsonschema, zizmor
	scripts/scan.sh

audit: venv  ## pip-audit --strict on the app's and the tools' requirements (needs the vulnerability service)
	scripts/audit.sh

scan: venv  ## Lynis and pending Debian security updates on every lab host (after make lab)
	ansible-playbook playbooks/scan.yml

deploy-check: venv  ## site.yml --check --diff on an environment, kept in build/deploy/: make deploy-check ENV=staging
	scripts/deploy.sh check $(ENV)

release: venv  ## Migrate, release the app behind the health gate, roll back on failure: make release ENV=staging
	scripts/deploy.sh release $(ENV)

# Two entry points, as the README says:
#   make        → the main job: bootstrap, validate the data, bring the lab up, converge it
#   make test   → the test suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data/mailboxes.yaml


.PHONY: run validate test lint i18n bootstrap bench bench-edit bench-usage bench-reconcile clean lab-up lab-down lab-status converge test-lab-future
run: bootstrap
	$(VENV)/bin/mailgov validate $(DATA)
	lab/lab up
	scripts/converge
	@echo
	@echo "Converged. Next: 'lab/lab status' (hosts), 'lab/lab ssh mail1' (a shell),"
	@echo "'make test' (proof on the real servers), docs/lab.md and docs/mailflow.md."

validate: bootstrap
	$(VENV)/bin/mailgov validate $(DATA)

bootstrap: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap scripts/install_collections.py
	scripts/bootstrap $(VENV)
	touch $@

test: bootstrap
	scripts/test

lint: bootstrap
	scripts/test --lint

# The gettext catalogs (mailgov/locale): extract every string and help text, merge into the
# .po files, compile the .mo; translate the new entries, run again, commit both.
i18n: bootstrap
	$(PY) tools/i18n.py
	$(PY) tools/i18n.py --check

# The lab suites on fresh hosts with the controller's clock a year ahead (lab/future, about
# 20 minutes; not part of `make test`). Leaves the lab converged with the future data.
test-lab-future: bootstrap
	lab/future

bench: bootstrap
	$(PY) benchmarks/bench_validate.py

# The edit commands and a 1,000-row import next to one validate (issue 15).
bench-edit: bootstrap
	$(PY) benchmarks/bench_edit.py $(BENCH_ARGS)

# Reconcile vs bare ldap3 vs community.general.ldap_entry, on a converged lab (MAILGOV_LAB_ID):
# scripts/bench_deps installs what its ldap_entry figure needs (Debian's python3-ldap).
bench-usage: bootstrap
	$(PY) benchmarks/bench_usage.py $(BENCH_ARGS)

bench-reconcile: bootstrap
	scripts/bench_deps
	$(PY) benchmarks/bench_reconcile.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV)

# The lab: real Debian 12 hosts (systemd-nspawn) that the roles converge and the tests talk to.
lab-up: bootstrap
	lab/lab up

lab-down:
	lab/lab down

lab-status:
	lab/lab status

converge: bootstrap
	scripts/converge

# Every target sets up what it needs: a fresh machine only needs `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv system-deps real-ha lint test test-fast test-faults demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

system-deps:
	@.ci/system-deps

## the real Home Assistant of the real_ha tier, in its own cached venv (Python 3.13 from pyenv;
## minutes cold, instant after); exit 3 means no Python 3.13 here, and those tests skip saying so
real-ha:
	@.ci/real-ha >/dev/null || test $$? -eq 3

## which scenarios `make test` runs again on containers: every trigger and survival scenario and
## the whole plan (the others differ only in load, which the process pass covers)
CONTAINER_SCENARIOS ?= rollback or survive or triggers or load_spike or full_migration

## the whole suite, as CI runs it: everything on processes (unit tests, fuzzing, the fault
## suite, mutants, chaos, the simulator against real runs, every scenario; the fast part on
## both cores, the slow part, whose scenarios judge latency, one at a time), then the trigger
## and survival scenarios on containers (those skip, saying how to get a Docker engine, where
## none answers)
test: venv system-deps real-ha
	$(BIN)/pytest --runtime process -m "not slow" -n 2
	$(BIN)/pytest --runtime process -m slow --durations=25
	$(BIN)/cutover images || echo "no container images here: the containers scenarios will skip"
	$(BIN)/pytest scenarios --runtime containers -p no:cacheprovider -k "$(CONTAINER_SCENARIOS)" \
		--durations=10

## the fault suite alone: the proxy, fault steps, survival and trigger scenarios, the mutants
test-faults: venv system-deps
	$(BIN)/pytest --runtime process tests/faultproxy tests/harness/test_fault_steps.py tests/mutants \
		scenarios -k "not scenario or rollback or survive or triggers or mutant"

## the fast set (under a minute): everything not marked slow
test-fast: venv system-deps
	$(BIN)/pytest -m "not slow" --runtime process

## the habits, enforced (pyproject.toml says which rules and why any is ignored): ruff over
## everything, mypy strict on pipeline/ and checked on harness/ and simulators/
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy pipeline harness simulators

## the main job: the whole migration plan against the real pipeline, with an HTML report
demo: venv system-deps
	$(BIN)/cutover run full_migration --report-dir reports

bench: venv system-deps
	$(BIN)/python bench/fake_ha.py
	$(BIN)/python bench/ingestion.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/verdict.py
	$(BIN)/python bench/faultproxy.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/judge_aa.py

clean:
	rm -rf $(VENV) build *.egg-info

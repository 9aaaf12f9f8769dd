# Every target sets up what it needs: a fresh machine only needs `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv system-deps test test-fast demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

system-deps:
	@.ci/system-deps

## the whole suite, as CI runs it: everything on processes, then the scenarios on containers
## (those skip, saying how to get a Docker engine, where none answers)
test: venv system-deps
	$(BIN)/pytest --runtime process
	$(BIN)/cutover images || echo "no container images here: the containers scenarios will skip"
	$(BIN)/pytest scenarios --runtime containers -p no:cacheprovider

## the fast set (under a minute): everything not marked slow
test-fast: venv system-deps
	$(BIN)/pytest -m "not slow" --runtime process

## the main job: the whole migration plan against the real pipeline, with an HTML report
demo: venv system-deps
	$(BIN)/cutover run full_migration --report-dir reports

bench: venv system-deps
	$(BIN)/python bench/fake_ha.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/verdict.py
	$(BIN)/python bench/faultproxy.py
	$(BIN)/python bench/simulate.py

clean:
	rm -rf $(VENV) build *.egg-info

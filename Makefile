# Two commands: `make demo` (install, seed the demo trial, serve it) and `make test` (install, run the whole suite).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := config.settings
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cxr_trial
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo demo-reset test install install-all chromium rlang lint reliability benchmarks bench clean validation-report

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The demo needs no torch (retrieval baseline); tests install the inference extra too.
$(VENV)/.installed-base: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[inference,dev]'
	touch $@ $(VENV)/.installed-base

install: $(VENV)/.installed-base
install-all: $(VENV)/.installed-all

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# R is the statistics tests' oracle (lme4 + lmerTest + pbkrtest), never a runtime dependency.
rlang:
	@Rscript -e 'library(lmerTest); library(pbkrtest); library(jsonlite)' >/dev/null 2>&1 || (apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-jsonlite >/dev/null)

demo: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo --port $(PORT)
	@echo "Serving on http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

# Start the demo over: a fresh SQLite database and media, seeded again; the virtual environment stays.
demo-reset: install
	$(PY) manage.py seed_demo --reset --port $(PORT)
	@echo "Serving on http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

test: install-all chromium rlang
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) HF_HUB_OFFLINE=1 \
	  DJANGO_SETTINGS_MODULE=config.settings_test DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Validation report (docs/validation.md): requirements (docs/requirements.yaml) -> tests -> pass/fail, with the code
# version and date, as HTML. Runs the whole suite into a JUnit XML, or renders one already made: JUNIT=path.
VALIDATION_DIR ?= build/validation
validation-report: $(if $(JUNIT),install,install-all chromium rlang)
	@mkdir -p $(VALIDATION_DIR)
	@if [ -z "$(JUNIT)" ]; then \
	  DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) HF_HUB_OFFLINE=1 \
	  DJANGO_SETTINGS_MODULE=config.settings_test DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest -q -p no:cacheprovider \
	    --junitxml=$(VALIDATION_DIR)/junit.xml $(PYTEST_ARGS) || true; fi
	$(PY) -m core.validation_report --junit $(or $(JUNIT),$(VALIDATION_DIR)/junit.xml) \
	  --requirements docs/requirements.yaml --out $(VALIDATION_DIR)/report.html

lint: install-all
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

reliability: install-all chromium
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) HF_HUB_OFFLINE=1 \
	  DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) benchmarks/reliability.py $(RELIABILITY_ARGS)

# Every speed benchmark at quick settings, then one table (benchmarks/all.py; issue 19). The load and drafts
# benchmarks make their own databases on TEST_DATABASE_URL's server; Redis at TEST_REDIS_URL.
bench: install-all
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) HF_HUB_OFFLINE=1 \
	  $(PY) benchmarks/all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles

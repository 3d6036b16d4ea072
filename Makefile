# The two commands a newcomer types: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/mailup-jobs: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev]'
	touch $@

# The whole system on embedded defaults: sandbox as MailUp, SQLite ledger, filesystem broker.
demo: $(BIN)/mailup-jobs
	$(BIN)/mailup-jobs demo

lint: $(BIN)/mailup-jobs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Lint, type-check, then every test (needs Redis and PostgreSQL: see README), in
# $(TEST_PROCESSES) processes (more on a machine with more cores: on 2, tests that time
# MailUp's caps and schedules fail for want of CPU), then those that must run alone; then
# the hostile-input tests on the other Pythons the project supports (tests/other_pythons.py).
TEST_PROCESSES ?= 1
test: lint
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) -m "not alone"
	$(BIN)/python -m pytest -m alone
	$(BIN)/python -m tests.other_pythons

bench: $(BIN)/mailup-jobs
	$(BIN)/python -m bench.throughput

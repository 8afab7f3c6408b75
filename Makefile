# Two commands do all set-up on a fresh machine:
#   make run    create .venv if missing, install, launch the demo (headless batch without a display)
#   make test   create .venv if missing, install (apt libraries for Xvfb too), run the test suite
PY ?= .venv/bin/python

.PHONY: run test setup setup-test lint bench docs clean

run: setup
	$(PY) -m camtrack.cli demo

test: setup-test
	.venv/bin/ruff check src tests benchmarks
	$(PY) -m pytest

setup:
	bash scripts/setup.sh gui

setup-test:
	bash scripts/setup.sh test

lint: setup-test
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

bench: setup
	bash scripts/setup.sh bench
	$(PY) benchmarks/bench_io.py --size-gb 1

clean:
	rm -rf .venv build dist .pytest_cache camtrack-demo-results

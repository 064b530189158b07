# Two commands do all set-up on a fresh machine: `make report` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: report test test-full lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel of this version is what these machines carry;
	# a looser pin would pull a multi-GB CUDA build. Users may use any torch>=2.3.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/reluscope report --out reluscope-report

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

test-full: $(STAMP)
	$(BIN)/pytest -q --run-slow

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) reluscope-report .pytest_cache

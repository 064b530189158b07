# Two commands do all set-up on a fresh machine: `make report` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
TESTING := $(VENV)/.installed-test
PIP := $(BIN)/pip install -q --disable-pip-version-check

.PHONY: report test test-full lint bench docs clean

# torch pinned: the CPU wheel of this version is what these machines carry; a looser
# pin would pull a multi-GB CUDA build. Users may use any torch>=2.3.
$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0 -e .
	touch $(CORE)

# onnx2torch (for the ONNX tests) without its torchvision dependency, which it needs for
# NMS/RoiAlign only and which pip would satisfy by replacing the pinned CPU torch.
$(TESTING): $(CORE)
	$(PIP) -e ".[test]"
	$(PIP) "onnx>=1.15" && $(PIP) --no-deps "onnx2torch>=1.5"
	bash scripts/ensure-chromium.sh
	touch $(TESTING)

report: $(CORE)
	$(BIN)/reluscope report --out reluscope-report

test: $(TESTING)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

test-full: $(TESTING)
	$(BIN)/pytest -q --run-slow

lint: $(TESTING)
	$(BIN)/ruff check src tests bench

bench: $(CORE)
	$(PIP) -e ".[bench]"
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The documentation site: docs/*.md and the API reference from the docstrings, into site/.
docs: $(CORE)
	$(PIP) -e ".[docs]"
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) reluscope-report .pytest_cache site

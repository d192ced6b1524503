# The two commands a newcomer needs: `make demo` and `make test`. Both install everything first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Real benchmark data, when it sits beside the repository (never copied into it).
export ARBOREC_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install demo test docs clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# torch is pinned and installed first: an unpinned torch would pull gigabytes of CUDA packages.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/arborec demo

test: install
	$(BIN)/python -m pytest -q

# The documentation site (MkDocs, Material theme, API reference by mkdocstrings) into site/; fails on any warning.
docs: install
	$(BIN)/pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs .pytest_cache site

# Two commands for a fresh machine: `make book` and `make test` (see README.md).
# Both bootstrap .venv (Python 3.11) with the pinned dependencies of pyproject.toml first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= book
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: lock setup test unit nbval paper-check book book-setup mathjax chromium toc execute timings html screenshot data bench clean distclean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@echo "setting up $(VENV): the Python packages of pyproject.toml at the versions of requirements.lock, and the python3 kernel"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -c requirements.lock -e ".[book,dev]" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (audiorepro)" >/dev/null
	@touch $(STAMP)

## make test: unit tests, every notebook at its smoke defaults under nbval, then the paper-check
test: setup unit nbval paper-check

unit: setup
	$(PY) -m pytest -q tests

nbval: setup
	$(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider --ignore=book/_executed book

## make paper-check: every notebook with a params/<stem>.papercheck.yaml runs its paper profile on the
## official-format miniatures and checkpoints with shrunken budgets (private home: _paper_check/, or
## $AUDIOREPRO_HOME); ONLY=atgnn/ runs one chapter (a glob or substring of <chapter>/<stem>.ipynb)
paper-check: setup
	$(PY) -m audiorepro.book paper-check $(if $(ONLY),--only '$(ONLY)')

## make book: install what the build needs (each step says what), execute every notebook with its
## book-profile parameter files, then build the HTML (and screenshots when chromium is there)
book: setup book-setup execute html screenshot

## set-up of the book: MathJax 3 via npm (served by the book itself), chromium via apt-get (screenshots)
book-setup: mathjax chromium

mathjax: setup
	$(PY) tools/book_setup.py mathjax
	$(PY) -m audiorepro.book mathjax

chromium: setup
	$(PY) tools/book_setup.py chromium

## make toc: regenerate _toc.yml from the book/ folders (the build also does)
toc: setup
	$(PY) -m audiorepro.book toc

execute: setup
	$(PY) -m audiorepro.book execute --profile $(PROFILE)
	$(PY) -m audiorepro.book timings --profile $(PROFILE)

## make timings: wall time of every notebook of $(PROFILE) from its done marker
timings: setup
	$(PY) -m audiorepro.book timings --profile $(PROFILE)

html: setup mathjax
	$(PY) -m audiorepro.book build

screenshot: setup chromium
	$(PY) -m audiorepro.book screenshot

data: setup
	$(PY) -m audiorepro.data.synthetic --out data/synthetic

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf _build book/_executed

distclean: clean
	rm -rf $(VENV) data cache results

## make lock: write the exact versions of the current .venv to requirements.lock (after changing pyproject.toml)
lock: setup
	@{ echo "# Exact versions that \`make\` installs (pip install -c requirements.lock -e \".[book,dev]\")."; \
	  echo "# pyproject.toml keeps the ranges; regenerate with \`make lock\` after changing them. Python 3.11, Linux x86-64."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^#'; } > requirements.lock

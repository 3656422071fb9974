# The README's two commands: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASTREID ?= fastreid==1.4.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= logs/demo
DEMO_SEED ?= 0

.PHONY: install demo demo-docs demo-seeds test lint bench gpu-check gpu-wheels clean

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

# The demo's three steps for seed $(1), outputs in $(2): SyntheticVI generated once; the baseline
# and CIFT (same data, schedule and seed) trained side by side, one core each (a training step
# of these small convolutions gains little from a second thread, and one thread gives the same
# figures whatever the machine's core count); then their tables side by side, also written to
# $(2)/comparison.{json,md}. The CIFT run shows its header and progress; the baseline's console
# goes to $(2)/baseline.out; everything else to $(2)/{baseline,cift}/log.txt.
define demo_runs
	@echo "== demo 1/3: the data set (configs/Demo/baseline_synthetic.yml)"
	@$(PY) projects/CIFT/tools/prepare_data.py --config-file configs/Demo/baseline_synthetic.yml
	@echo "== demo 2/3: the baseline and CIFT, seed $(1), side by side on one core each" \
		"(the baseline's console: $(2)/baseline.out)"
	@mkdir -p $(2)
	@OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) projects/CIFT/train_net.py \
		--config-file configs/Demo/baseline_synthetic.yml SEED $(1) OUTPUT_DIR $(2)/baseline \
		> $(2)/baseline.out 2>&1 & baseline=$$!; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) projects/CIFT/train_net.py \
		--config-file configs/Demo/cift_synthetic.yml SEED $(1) OUTPUT_DIR $(2)/cift; cift=$$?; \
	echo "waiting for the baseline: $$(tail -n 1 $(2)/baseline.out)"; \
	wait $$baseline; status=$$?; [ $$status = 0 ] || tail -n 3 $(2)/baseline.out; \
	[ $$status = 0 ] && [ $$cift = 0 ]
	@echo "== demo 3/3: the two side by side"
	@$(PY) projects/CIFT/tools/compare_runs.py baseline=$(2)/baseline CIFT=$(2)/cift \
		--json $(2)/comparison.json --markdown $(2)/comparison.md
endef

demo: $(STAMP)
	$(call demo_runs,$(DEMO_SEED),$(DEMO_OUT))

# After `make demo`: its comparison becomes docs/demo_result.json, the README's demo table.
demo-docs: $(STAMP)
	$(PY) projects/CIFT/tools/demo_tables.py --take $(DEMO_OUT)/comparison.json \
		docs/demo_result.json

# The demo's seeds 1 and 2 (seed 0 is `make demo`), taken into docs/demo.md's tables.
demo-seeds: $(STAMP)
	$(call demo_runs,1,logs/demo-seed1)
	$(PY) projects/CIFT/tools/demo_tables.py --take logs/demo-seed1/comparison.json \
		docs/demo_seeds/seed1.json
	$(call demo_runs,2,logs/demo-seed2)
	$(PY) projects/CIFT/tools/demo_tables.py --take logs/demo-seed2/comparison.json \
		docs/demo_seeds/seed2.json

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

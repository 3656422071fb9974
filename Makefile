# The README's two commands: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASTREID ?= fastreid==1.4.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= logs/demo
DEMO_QUICK_OUT ?= logs/demo-quick

.PHONY: install demo demo-quick test lint bench clean

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

lint: $(STAMP)
	$(VENV)/bin/ruff check projects tests bench setup.py

clean:
	rm -rf $(VENV) logs

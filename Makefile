# The README's two commands: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASTREID ?= fastreid==1.4.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= logs/demo

.PHONY: install demo test lint bench clean

install: $(STAMP)

# fastreid's PyPI metadata pins torch 1.13.1, which has no wheel for Python 3.11 here:
# install it without its declared dependencies; setup.py lists what it really needs.
$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps $(FASTREID)
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -c "import cift; print('cift installed:', cift.__file__)"
	touch $(STAMP)

# The baseline and CIFT on the synthetic data set (same seed), then both tables side by side.
demo: $(STAMP)
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/baseline_synthetic.yml \
		OUTPUT_DIR $(DEMO_OUT)/baseline
	$(PY) projects/CIFT/train_net.py --config-file configs/Demo/cift_synthetic.yml \
		OUTPUT_DIR $(DEMO_OUT)/cift
	$(PY) projects/CIFT/compare_runs.py baseline=$(DEMO_OUT)/baseline $(DEMO_OUT)/cift

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/train_step.py

lint: $(STAMP)
	$(VENV)/bin/ruff check projects tests bench setup.py

clean:
	rm -rf $(VENV) logs

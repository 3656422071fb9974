# The README's two commands: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASTREID ?= fastreid==1.4.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= logs/demo
DEMO_SEED ?= 0

.PHONY: install demo demo-docs demo-seeds test lint bench clean

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

# The demo's three steps for seed $(1), outputs in $(2): the baseline and CIFT on the generated
# SyntheticVI (same data, schedule and seed), then their tables side by side, also written to
# $(2)/comparison.{json,md}. Each run prints a header, its progress and its table; everything
# else goes to $(2)/{baseline,cift}/log.txt.
define demo_runs
	@echo "== demo 1/3: the baseline, configs/Demo/baseline_synthetic.yml, seed $(1)"
	@$(PY) projects/CIFT/train_net.py --config-file configs/Demo/baseline_synthetic.yml \
		SEED $(1) OUTPUT_DIR $(2)/baseline
	@echo "== demo 2/3: CIFT, configs/Demo/cift_synthetic.yml, seed $(1)"
	@$(PY) projects/CIFT/train_net.py --config-file configs/Demo/cift_synthetic.yml \
		SEED $(1) OUTPUT_DIR $(2)/cift
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

lint: $(STAMP)
	$(VENV)/bin/ruff check projects tests bench setup.py

clean:
	rm -rf $(VENV) logs

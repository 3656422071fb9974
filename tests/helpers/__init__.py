"""Shared test helpers (not tests): the repository's paths and a loader for its scripts.

The modules beside this one build what several test folders need: `runs` (tiny train_net
runs), `exports` (trained-like models and run folders), `evaluator` (fake SYSU test sets fed
to the evaluator), `trees` (fake RegDB / LLCM trees), `unpickling` (an object whose
unpickling is observable) and `interruptions` (stopped-and-resumed runs compared with an
uninterrupted one). `compat_program.py`, `resume_driver.py` and `plain_features.py` (a features
file written without cift) are run as scripts.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "configs/Demo/baseline_synthetic.yml")
DEMO_CIFT = str(ROOT / "configs/Demo/cift_synthetic.yml")
# The four SYSU-MM01 settings, in the order the evaluator reports them.
SETTINGS = ("all-single", "all-multi", "indoor-single", "indoor-multi")


def load_script(relative: str, name: str | None = None) -> ModuleType:
    """Import the script at ROOT/relative (e.g. "projects/CIFT/tools/search.py") as a module."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

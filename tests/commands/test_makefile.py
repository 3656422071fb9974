"""The Makefile: `make install` shows pip's output with a line per step, and `make demo-quick`
runs the demo's two-run comparison on a short schedule of the same data, model and seed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cift.config import load_config
from helpers import ROOT

DEMO = ROOT / "configs" / "Demo"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run (-n), the install included (-B, a fresh VENV)."""
    return subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", target], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_install_shows_pip_and_announces_each_step(tmp_path):
    commands = dry_run("install", tmp_path)
    assert "pip install" in commands and "--quiet" not in commands
    steps = [line for line in commands.splitlines() if "== install" in line]
    assert len(steps) == 5 and "5/5" in steps[-1]


def test_demo_quick_runs_both_quick_configs_and_compares_them(tmp_path):
    commands = dry_run("demo-quick", tmp_path)
    for config in ("baseline_synthetic_quick.yml", "cift_synthetic_quick.yml"):
        assert f"configs/Demo/{config}" in commands
    assert "compare_runs.py baseline=logs/demo-quick/baseline" in commands


def test_quick_demo_is_the_demo_on_a_shorter_schedule():
    full = {arch: load_config(str(DEMO / f"{arch}_synthetic.yml")) for arch in ("baseline",
                                                                                "cift")}
    quick = {arch: load_config(str(DEMO / f"{arch}_synthetic_quick.yml"))
             for arch in ("baseline", "cift")}
    for arch in full:
        for key in ("DATASETS", "INPUT", "SEED"):
            assert quick[arch][key] == full[arch][key], key
        assert quick[arch].MODEL.META_ARCHITECTURE == full[arch].MODEL.META_ARCHITECTURE
        s = quick[arch].SOLVER
        assert s.ITERS_PER_EPOCH * s.MAX_EPOCH == 240
        assert quick[arch].TEST.EVAL_PERIOD == s.MAX_EPOCH  # one evaluation, at the end

"""The Makefile: `make install` shows pip's output with a line per step; `make demo` trains the
demo's baseline and CIFT with one seed and writes their comparison as JSON and Markdown, which
`make demo-docs` takes into the README; `make demo-seeds` runs the demo's other seeds."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT

DEMO = ROOT / "configs" / "Demo"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run (-n), the install included (-B, a fresh VENV)."""
    return dry_run_with(tmp_path, target)


def dry_run_with(tmp_path: Path, *args: str) -> str:
    """The commands `make ARGS...` would run (-n, -B, a fresh VENV)."""
    return subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_install_shows_pip_and_announces_each_step(tmp_path):
    commands = dry_run("install", tmp_path)
    assert "pip install" in commands and "--quiet" not in commands
    steps = [line for line in commands.splitlines() if "== install" in line]
    assert len(steps) == 5 and "5/5" in steps[-1]


def flat(commands: str) -> str:
    """Make's commands as one line of single spaces (continuation lines joined)."""
    return " ".join(commands.replace("\\\n", " ").split())


def test_demo_makes_the_data_then_trains_both_side_by_side_and_writes_the_comparison(tmp_path):
    commands = flat(dry_run("demo", tmp_path))
    prepare = "prepare_data.py --config-file configs/Demo/baseline_synthetic.yml"
    baseline = ("OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 {py} projects/CIFT/train_net.py "
                "--config-file configs/Demo/baseline_synthetic.yml SEED 0 OUTPUT_DIR "
                "logs/demo/baseline > logs/demo/baseline.out 2>&1 & baseline=$!;")
    cift = ("OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 {py} projects/CIFT/train_net.py "
            "--config-file configs/Demo/cift_synthetic.yml SEED 0 OUTPUT_DIR logs/demo/cift;")
    py = f"{tmp_path / 'venv'}/bin/python"
    steps = [prepare, baseline.format(py=py), cift.format(py=py), "wait $baseline;",
             "compare_runs.py baseline=logs/demo/baseline CIFT=logs/demo/cift --json "
             "logs/demo/comparison.json --markdown logs/demo/comparison.md"]
    at = [commands.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), steps[at.index(-1)] if -1 in at else at
    seeded = dry_run_with(tmp_path, "demo", "DEMO_SEED=2", "DEMO_OUT=logs/s2")
    assert seeded.count("SEED 2 OUTPUT_DIR logs/s2/") == 2


def test_demo_fails_when_either_run_fails(tmp_path):
    """The recipe's shell line, with each training run replaced by `exit N`."""
    line = next(c for c in dry_run("demo", tmp_path).replace("\\\n", " ").splitlines()
                if "wait $baseline" in c)
    for baseline, cift, expected in ((0, 0, 0), (1, 0, 1), (0, 1, 1)):
        script = line.replace(line[:line.index("& baseline=$!")],
                              f"mkdir -p {tmp_path}/o && (exit {baseline}) > {tmp_path}/o/x ")
        script = script.replace(script[script.index("baseline=$!;") + 12:
                                       script.index("; cift=$?")],
                                f" (exit {cift})").replace("logs/demo", f"{tmp_path}/o")
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
        assert (done.returncode != 0) == bool(expected), (baseline, cift, script)


def test_demo_docs_and_seeds_take_their_comparisons_into_docs(tmp_path):
    assert ("demo_tables.py --take logs/demo/comparison.json docs/demo_result.json"
            in flat(dry_run("demo-docs", tmp_path)))
    seeds = flat(dry_run("demo-seeds", tmp_path))
    for seed in (1, 2):
        assert seeds.count(f"SEED {seed} OUTPUT_DIR logs/demo-seed{seed}/") == 2
        assert (f"demo_tables.py --take logs/demo-seed{seed}/comparison.json "
                f"docs/demo_seeds/seed{seed}.json") in seeds


def test_there_is_one_demo():
    targets = (ROOT / "Makefile").read_text()
    assert "demo-quick" not in targets and "demo-long" not in targets
    assert sorted(p.name for p in DEMO.glob("*.yml")) == ["baseline_synthetic.yml",
                                                         "cift_synthetic.yml"]

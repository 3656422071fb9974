"""bench/gpu_check.py, the GPU path in one command: its CPU dry run (`--device cpu --tiny`) runs
every check a CPU can, so that the script cannot rot between GPU loans; without a GPU the
plain command and `make gpu-check` say so in one line and exit 2; the table's pure parts."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, load_script

SCRIPT = ROOT / "bench" / "gpu_check.py"
gpu_check = load_script("bench/gpu_check.py")
NO_GPU = "gpu_check: no CUDA GPU is visible"
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "projects" / "CIFT"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=900)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    if torch.cuda.is_available():
        pytest.skip("the dry run is the CPU's (a GPU is visible)")
    out = tmp_path_factory.mktemp("gpu_check")
    # no loader processes: inside the spawned process group they start by spawning, each
    # importing the project again
    result = run_script("--device", "cpu", "--tiny", "--out", str(out), "--work",
                        str(out / "work"), "--workers", "0")
    report_file = out / gpu_check.RESULTS_FILE
    assert report_file.is_file(), (result.stdout + result.stderr)[-3000:]
    return result, json.loads(report_file.read_text())


def test_dry_run_passes_every_check_a_cpu_can_run(dry_run):
    result, report = dry_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    faiss = "pass" if importlib.util.find_spec("faiss") else "skip"
    assert {row["check"]: row["status"] for row in report["rows"]} == {
        "data": "pass",
        "train baseline fp32": "pass", "train baseline amp": "skip",
        "train cift fp32": "pass", "train cift amp": "skip",
        "amp speed-up baseline": "skip", "amp speed-up cift": "skip",
        "evaluate": "pass",
        "transfer dense": "pass", "transfer sparse torch": "pass",
        "transfer sparse faiss": faiss,
        "search top-20 torch": "pass", "search top-20 faiss": faiss,
        "gloo 1 process": "pass", "gloo 2 processes": "skip",
        "total time": "info"}
    assert report["first_failure"] is None
    assert report["environment"]["device"] == "cpu"
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("gpu_check: every check passed")
    assert any(line.startswith("evaluate") and "pass" in line for line in lines)  # the table


def test_dry_run_measures_each_training_run(dry_run):
    _, report = dry_run
    rows = {row["check"]: row for row in report["rows"]}
    for arch in ("baseline", "cift"):
        data = rows[f"train {arch} fp32"]["data"]
        assert data["iterations"] == gpu_check.TINY.iters
        assert data["timed_steps"] == gpu_check.TINY.iters - gpu_check.TINY.warmup
        assert data["images_per_s"] > 0 and data["step_ms"] > 0
        assert all(math.isfinite(v) for v in data["losses"])
        assert gpu_check.loss_falls(data["losses"])
    for name in ("transfer dense", "transfer sparse torch", "search top-20 torch"):
        assert rows[name]["data"]["max_abs_diff"] <= gpu_check.TOLERANCE
    assert rows["gloo 1 process"]["data"]["seconds"] > 0


@needs_no_gpu
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path):
    result = run_script("--out", str(tmp_path))
    assert result.returncode == 2
    assert (result.stdout + result.stderr).splitlines() == [
        result.stderr.strip()] and result.stderr.startswith(NO_GPU)
    assert not list(tmp_path.iterdir())  # nothing written


@needs_no_gpu
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_gpu_check_without_a_gpu_exits_2_with_that_line(tmp_path):
    stamp = tmp_path / "installed"  # stands for a finished `make install`
    stamp.touch()
    result = subprocess.run(
        ["make", "gpu-check", f"PY={sys.executable}", f"STAMP={stamp}",
         f"GPU_CHECK_OUT={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "projects" / "CIFT")}, timeout=300)
    assert result.returncode == 2
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if not line.startswith("make")]  # make adds its own "Error 2" line
    assert len(ours) == 1 and ours[0].startswith(NO_GPU)


def test_a_failed_check_makes_the_exit_status_1_naming_the_first(tmp_path, monkeypatch,
                                                                capsys):
    rows = [gpu_check.Row("data", "pass"), gpu_check.Row("train cift fp32", "pass"),
            gpu_check.Row("transfer dense", "fail", "max |dev - cpu| 3.0e-03", "above 0.0001"),
            gpu_check.Row("nccl 1 process", "fail", "error", "RuntimeError: boom")]
    monkeypatch.setattr(gpu_check, "check_data", lambda ctx: rows[:1])
    monkeypatch.setattr(gpu_check, "run_checks", lambda ctx: rows[1:])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("gpu_check: first failure: transfer dense: max |dev - cpu| 3.0e-03; "
                    "above 0.0001")
    report = json.loads((tmp_path / gpu_check.RESULTS_FILE).read_text())
    assert report["first_failure"] == "transfer dense"
    assert [r["status"] for r in report["rows"]] == ["pass", "pass", "fail", "fail", "info"]


def test_loss_falls_compares_the_first_and_last_quarters():
    assert gpu_check.loss_falls([5.0, 6.0, 4.0, 4.5, 3.0, 3.5, 3.9, 2.0])  # 5.5 -> 2.95
    assert not gpu_check.loss_falls([3.0, 2.0, 9.0, 1.0, 2.0, 4.0, 3.0, 2.0])  # 2.5 -> 2.5
    assert gpu_check.loss_falls([2.0, 1.0]) and not gpu_check.loss_falls([1.0, 1.0])


def unit(*rows) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_near_tie_rows_are_those_whose_kth_neighbour_is_tied():
    # k = 2: a gallery row keeps itself and its nearest other gallery node, a query row
    # itself and its nearest gallery node
    gallery = unit([1, 0], [0, 1], [0, -1])  # g0 sees g1 and g2 at cosine 0 (a tie)
    queries = unit([1, 1], [1, 0.1])  # q0 sees g0 and g1 at 0.707 (a tie)
    assert gpu_check.near_tie_rows(gallery, queries, k=2).tolist() == [
        True, False, False, True, False]
    # k = 1: every row keeps only itself
    assert not gpu_check.near_tie_rows(gallery, queries, k=1).any()
    # a gap wider than `gap` is no tie
    assert gpu_check.near_tie_rows(gallery, unit([1, 0.9]), k=2, gap=0.01).tolist() == [
        True, False, False, False]


def test_largest_difference_leaves_out_the_skipped_rows():
    a = torch.zeros(3, 2)
    b = torch.tensor([[0.0, 1e-6], [0.5, 0.0], [0.0, -2e-6]])
    assert gpu_check.largest_difference(a, b) == 0.5
    skip = torch.tensor([False, True, False])
    assert gpu_check.largest_difference(a, b, skip) == pytest.approx(2e-6)
    assert gpu_check.largest_difference(a, b, torch.ones(3, dtype=torch.bool)) == 0.0


def test_table_lists_every_row_under_its_header():
    rows = [gpu_check.Row("data", "pass", "650 images", "generated"),
            gpu_check.Row("train cift amp", "skip", "", "GPU only")]
    lines = gpu_check.format_table(rows).splitlines()
    assert lines[0].split() == ["check", "status", "value", "detail"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["data", "pass", "650", "images", "generated"]
    assert lines[3].split() == ["train", "cift", "amp", "skip", "GPU", "only"]

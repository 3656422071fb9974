"""Interrupted-then-resumed training runs compared with an uninterrupted one: the stopped run
(kill -9, SIGTERM or SIGINT at a point of the run) and its `--resume` must repeat the raw
losses, the final weights and optimizer state, the results and metrics.json of the run that
was never stopped. Used by tests/engine/test_resume.py (three cases) and
tests/run_interruptions.py (all nine)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from helpers import DEMO_CIFT, ROOT
from helpers.runs import TINY

DRIVER = str(ROOT / "tests/helpers/resume_driver.py")
# 3 epochs of 2 iterations (0-1, 2-3, 4-5), a checkpoint after each; CIFT draws CRI samples
# from torch's generator every step and the train transforms use it too.
RUN = [*TINY, "SOLVER.MAX_EPOCH", "3", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.LOG_PERIOD", "1",
       "TEST.EVAL_PERIOD", "100", "MODEL.CIFT.CRI.SAMPLES", "2", "SEED", "0"]
# Where the run is stopped (the driver's $STOP_AT).
POINTS = {"before-first-checkpoint": "iteration:0",  # mid-epoch 0, no checkpoint yet
          "mid-epoch": "iteration:4",  # mid-epoch 2, after the epoch-1 checkpoint
          "after-checkpoint": "epoch:0"}  # right after the epoch-0 checkpoint is written
SIGNALS = ("KILL", "TERM", "INT")
# The iteration the resumed run starts from: kill -9 loses what followed the last checkpoint;
# SIGTERM / SIGINT stop after the current iteration with a checkpoint of it.
RESUMES_AT = {("KILL", "before-first-checkpoint"): 0, ("KILL", "mid-epoch"): 4,
              ("KILL", "after-checkpoint"): 2, ("TERM", "before-first-checkpoint"): 1,
              ("TERM", "mid-epoch"): 5, ("TERM", "after-checkpoint"): 2,
              ("INT", "before-first-checkpoint"): 1, ("INT", "mid-epoch"): 5,
              ("INT", "after-checkpoint"): 2}
# wall-clock scalars, which no two runs share
TIMING = {"time", "data_time", "eta_seconds"}


def drive(out: Path, losses: Path, datasets_root: Path, *extra: str, stop: str = "",
          signal_name: str = "KILL", resume: bool = False) -> subprocess.CompletedProcess:
    """tests/helpers/resume_driver.py of RUN (CIFT) into `out`, stopped at `stop` (POINTS)."""
    cmd = [sys.executable, DRIVER, "--config-file", DEMO_CIFT,
           *(["--resume"] if resume else []), *RUN, "OUTPUT_DIR", str(out), *extra]
    env = {**os.environ, "FASTREID_DATASETS": str(datasets_root), "OMP_NUM_THREADS": "1",
           "LOSSES_FILE": str(losses), "STOP_AT": stop, "STOP_SIGNAL": signal_name}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def uninterrupted(out: Path, datasets_root: Path, *extra: str) -> Path:
    """The run never stopped, into `out` (its losses in `out`.jsonl)."""
    done = drive(out, out.with_suffix(".jsonl"), datasets_root, *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["iteration"] for r in records(out.with_suffix(".jsonl"))] == list(range(6))
    return out


def same_tensors(a, b) -> bool:
    """Nested dicts / lists of tensors and numbers, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_tensors(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def interrupt_and_resume(full: Path, run: Path, datasets_root: Path, signal_name: str,
                         point: str, *extra: str) -> str:
    """Stop a run into `run` with `signal_name` at `point`, resume it, and assert that it
    repeats the uninterrupted run `full`; returns the stopped run's last stderr line."""
    stopped = drive(run, run.with_suffix(".stopped.jsonl"), datasets_root, *extra,
                    stop=POINTS[point], signal_name=signal_name)
    signum = signal.Signals[f"SIG{signal_name}"]
    if signal_name == "KILL":
        assert stopped.returncode == -signum, stopped.stderr[-3000:]
        line = ""
    else:
        assert stopped.returncode == 128 + signum, stopped.stderr[-3000:]
        assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
        ends = [x for x in stopped.stderr.splitlines() if x.startswith("interrupted:")]
        assert len(ends) == 1 and stopped.stderr.strip().endswith(ends[0]), stopped.stderr
        line = ends[0]
        assert line.startswith(f"interrupted: SIG{signal_name}: stopped before iteration "
                               f"{RESUMES_AT[signal_name, point]} "), line
    resumed = drive(run, run.with_suffix(".resumed.jsonl"), datasets_root, *extra, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = records(full.with_suffix(".jsonl"))
    before = records(run.with_suffix(".stopped.jsonl"))
    after = records(run.with_suffix(".resumed.jsonl"))
    start = RESUMES_AT[signal_name, point]
    assert after[0]["iteration"] == start, (after[0]["iteration"], start)
    assert before == expected[:len(before)]  # raw losses, compared exactly
    assert after == expected[start:]

    final = torch.load(run / "model_final.pth", weights_only=True)
    reference = torch.load(full / "model_final.pth", weights_only=True)
    for key in ("model", "optimizer"):
        assert same_tensors(final[key], reference[key]), key
    assert json.loads((run / "protocol_results.json").read_text()) == json.loads(
        (full / "protocol_results.json").read_text())
    logged = records(run / "metrics.json")
    pairs = [(r["iteration"], k) for r in logged for k in r if k != "iteration"]
    assert len(pairs) == len(set(pairs)), "metrics.json records a scalar twice"
    assert without_timing(logged) == without_timing(records(full / "metrics.json"))
    assert not (run / "model_interrupted.pth").exists()  # replaced by the next checkpoint
    return line

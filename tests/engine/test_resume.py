"""Resume is bit-identical: a run killed with SIGKILL after a checkpoint and resumed with
--resume computes the same raw per-iteration losses as the uninterrupted run (CPU), and
metrics.json keeps each iteration once. Plus the resume refusals: another batch size, a
finished run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cift.engine.resume import check_resume, epoch_seeds, truncate_metrics
from cift.errors import CiftInputError
from helpers import DEMO, ROOT
from helpers import DEMO_CIFT as CIFT
from helpers.runs import TINY, run_cli

DRIVER = str(ROOT / "tests/helpers/resume_driver.py")
# 3 epochs of 2 iterations (0-1, 2-3, 4-5), a checkpoint after each; CIFT draws CRI samples
# from torch's generator every step and the train transforms use it too.
RUN = [*TINY, "SOLVER.MAX_EPOCH", "3", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.LOG_PERIOD", "1",
       "TEST.EVAL_PERIOD", "100", "MODEL.CIFT.CRI.SAMPLES", "2", "SEED", "0"]
KILL_AFTER = 4  # the first iteration of epoch 2, after the epoch-1 checkpoint (iteration 3)


def drive(out: Path, losses: Path, datasets_root: Path, *extra: str, kill_after: int = -1,
          resume: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, DRIVER, "--config-file", CIFT, *(["--resume"] if resume else []),
           *RUN, "OUTPUT_DIR", str(out), *extra]
    env = {**os.environ, "FASTREID_DATASETS": str(datasets_root), "OMP_NUM_THREADS": "1",
           "LOSSES_FILE": str(losses), "KILL_AFTER": str(kill_after)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_killed_and_resumed_run_repeats_the_uninterrupted_losses(datasets_root, tmp_path,
                                                                 workers):
    opts = ("DATALOADER.NUM_WORKERS", workers)
    full = drive(tmp_path / "full", tmp_path / "full.jsonl", datasets_root, *opts)
    assert full.returncode == 0, full.stderr[-3000:]
    killed = drive(tmp_path / "run", tmp_path / "killed.jsonl", datasets_root, *opts,
                   kill_after=KILL_AFTER)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "last_checkpoint").read_text() == "model_0001.pth"
    assert 4 in [r["iteration"] for r in records(run / "metrics.json")]  # written, then killed
    resumed = drive(run, tmp_path / "resumed.jsonl", datasets_root, *opts, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = records(tmp_path / "full.jsonl")
    assert [r["iteration"] for r in expected] == list(range(6))
    before_kill = records(tmp_path / "killed.jsonl")
    after_resume = records(tmp_path / "resumed.jsonl")
    assert [r["iteration"] for r in after_resume] == [4, 5]
    # raw values, compared exactly
    assert before_kill == expected[:KILL_AFTER + 1]
    assert after_resume == expected[4:]
    assert "loss_cri_ce" in expected[0]  # CRI ran: it draws from torch's generator every step

    # an iteration may span several lines (the final evaluation adds its scalars to the last
    # one), but no scalar is recorded twice at one iteration, and the lines are those of the
    # uninterrupted run
    logged = records(run / "metrics.json")
    pairs = [(r["iteration"], key) for r in logged for key in r if key != "iteration"]
    assert len(pairs) == len(set(pairs)), "metrics.json repeats records of the killed run"
    uninterrupted = records(tmp_path / "full" / "metrics.json")
    timing = {"time", "data_time", "eta_seconds"}  # need a few iterations of timer history

    def names(rows):
        return [(r["iteration"], sorted(set(r) - timing)) for r in rows]

    assert names(logged) == names(uninterrupted)
    assert max(r["iteration"] for r in logged) == 5
    full_results = json.loads((tmp_path / "full" / "protocol_results.json").read_text())
    assert json.loads((run / "protocol_results.json").read_text()) == full_results


def test_epoch_seeds_depend_on_seed_epoch_and_rank_only():
    seeds = {epoch_seeds(s, e, r) for s in (0, 1) for e in range(4) for r in range(3)}
    assert len(seeds) == 24
    assert epoch_seeds(0, 3, 1) == epoch_seeds(0, 3, 1)


def test_truncate_metrics_keeps_earlier_records_in_place(tmp_path):
    path = tmp_path / "metrics.json"
    lines = [json.dumps({"iteration": i, "loss": i / 3}) for i in range(6)]
    path.write_text("\n".join(lines) + "\n" + '{"iteration": 6, "lo')  # torn by a kill
    with open(path, "a") as writer:  # a writer holding the file open, as fastreid's does
        assert truncate_metrics(str(tmp_path), 4) == 3
        writer.write(json.dumps({"iteration": 4}) + "\n")
    assert [json.loads(x)["iteration"] for x in path.read_text().splitlines()] == [0, 1, 2, 3, 4]
    assert truncate_metrics(str(tmp_path), 10) == 0


@pytest.fixture(scope="module")
def finished(demo_run, tmp_path_factory):
    """A copy of the session's finished demo run (conftest), which these tests resume."""
    out = tmp_path_factory.mktemp("finished") / "run"
    shutil.copytree(demo_run[0], out)
    return out


def test_resume_of_a_finished_run_says_it_is_complete(finished, env, tmp_path, capsys):
    before = (finished / "metrics.json").read_text()
    rc = run_cli("--config-file", DEMO, "--resume", *TINY, "OUTPUT_DIR", str(finished))
    assert rc == 0
    assert "the run is complete (2 of 2 epochs trained)" in (finished / "log.txt").read_text()
    assert (finished / "metrics.json").read_text() == before


def test_resume_with_another_batch_size_is_refused_before_writing(finished, env, tmp_path,
                                                                  capsys):
    log = (finished / "log.txt").read_text()
    rc = run_cli("--config-file", DEMO, "--resume", *TINY, "OUTPUT_DIR", str(finished),
                 "SOLVER.IMS_PER_BATCH", "32")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "SOLVER.IMS_PER_BATCH 32" in err[0] and "32 images per GPU" in err[0]
    assert "trained with 16 per GPU" in err[0]
    assert (finished / "log.txt").read_text() == log  # nothing written


def test_check_resume_names_both_sizes(finished):
    from cift.config import load_config

    cfg = load_config(DEMO, [*TINY, "OUTPUT_DIR", str(finished), "SOLVER.IMS_PER_BATCH", "64"])
    with pytest.raises(CiftInputError, match=r"gives 32 images per GPU.*trained with 16 per GPU"):
        check_resume(cfg, world_size=2)
    cfg = load_config(DEMO, [*TINY, "OUTPUT_DIR", str(finished), "SOLVER.IMS_PER_BATCH", "32"])
    check_resume(cfg, world_size=2)  # 16 per GPU on two processes: fits


def test_resuming_parameters_of_another_shape_is_refused():
    """A checkpoint without a run state (older) whose CRI rows follow another batch size."""
    import torch

    from cift.engine.resume import check_resumed_shapes

    model = torch.nn.Module()
    model.cri = torch.nn.Linear(4, 16)
    loaded = {"cri.weight": torch.zeros(32, 4), "cri.bias": torch.zeros(16)}
    with pytest.raises(CiftInputError, match=r"cri.weight \(32, 4\) in the file, \(16, 4\)"):
        check_resumed_shapes(model, loaded, "model_0001.pth")
    check_resumed_shapes(model, {"cri.bias": torch.zeros(16)}, "model_0001.pth")

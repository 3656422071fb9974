"""RegDB and LLCM end to end on fake trees: 2-iteration training + evaluation, both directions,
the RegDB multi-trial runner (resume, no trial run twice), and the protocol tasks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cift.evaluation.tasks import llcm_tasks, regdb_tasks
from helpers import ROOT, load_script
from helpers.runs import train_net
from helpers.trees import make_llcm, make_regdb

TINY = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18x",
        "MODEL.BACKBONE.FEAT_DIM", "512", "INPUT.SIZE_TRAIN", "[32, 16]",
        "INPUT.SIZE_TEST", "[32, 16]", "INPUT.PADDING.SIZE", "2", "SOLVER.IMS_PER_BATCH", "16",
        "SOLVER.ITERS_PER_EPOCH", "1", "SOLVER.MAX_EPOCH", "2", "SOLVER.STEPS", "[1]",
        "SOLVER.WARMUP_EPOCHS", "1",
        "SOLVER.CHECKPOINT_PERIOD", "1", "SOLVER.LOG_PERIOD", "100", "TEST.EVAL_PERIOD", "2",
        "TEST.IMS_PER_BATCH", "16", "DATALOADER.NUM_WORKERS", "0", "MODEL.CIFT.CRI.SAMPLES", "2",
        "SEED", "0"]


def run(config: str, out: Path, *extra: str) -> dict:
    argv = ["--config-file", str(ROOT / config), *TINY, "OUTPUT_DIR", str(out), *extra]
    return train_net.main(train_net.default_argument_parser().parse_args(argv))


@pytest.fixture()
def regdb_env(tmp_path, monkeypatch) -> Path:
    make_regdb(tmp_path / "data")
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture()
def llcm_env(tmp_path, monkeypatch) -> Path:
    make_llcm(tmp_path / "data")
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "data"))
    return tmp_path


def assert_metrics(results: dict, tasks: tuple[str, ...]) -> None:
    assert list(results) == list(tasks)
    for metrics in results.values():
        assert 0 <= metrics["R1"] <= metrics["R5"] <= 100 and 0 < metrics["mAP"] <= 100


@pytest.mark.parametrize("config", ["configs/RegDB/baseline_R50.yml", "configs/RegDB/cift_R50.yml"])
def test_regdb_trains_and_evaluates_both_directions(regdb_env, config):
    results = run(config, regdb_env / "out", "DATASETS.REGDB.SPLIT", "2")
    directions = ("visible-thermal", "thermal-visible")
    if "cift" in config:
        assert_metrics(results["CIFT"], directions)
        assert_metrics(results["CIFT\u2020"], directions)
        assert results["metric"] == results["CIFT"]["visible-thermal"]["mAP"]
    else:
        assert_metrics({k: results[k] for k in directions}, directions)
        assert results["metric"] == results["visible-thermal"]["mAP"]


@pytest.mark.parametrize("config", ["configs/LLCM/baseline_R50.yml", "configs/LLCM/cift_R50.yml"])
def test_llcm_trains_and_evaluates_both_directions(llcm_env, config):
    results = run(config, llcm_env / "out", "TEST.LLCM.TRIALS", "3")
    directions = ("visible-infrared", "infrared-visible")
    rows = results["CIFT"] if "cift" in config else {k: results[k] for k in directions}
    assert_metrics(rows, directions)


def trials_cli(env: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "projects/CIFT/tools/run_regdb_trials.py"),
           "--config-file", str(ROOT / "configs/RegDB/baseline_R50.yml"), "--splits", "1,2",
           *TINY, "OUTPUT_DIR", str(env / "runs"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))


def test_regdb_trial_runner_resumes_and_never_reruns_a_trial(regdb_env):
    first = trials_cli(regdb_env)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = regdb_env / "runs"
    summary = json.loads((runs / "regdb_trials.json").read_text())
    assert summary["trials"] == [1, 2]
    per_trial = [json.loads((runs / f"trial_{t}" / "protocol_results.json").read_text())["RegDB"]
                 for t in (1, 2)]
    r1 = [r["visible-thermal"]["R1"] for r in per_trial]
    assert summary["RegDB"]["visible-thermal"]["R1"] == pytest.approx(np.mean(r1))
    assert summary["RegDB"]["visible-thermal"]["R1_std"] == pytest.approx(np.std(r1))
    assert "visible-thermal" in first.stdout

    # Interrupt trial 2 after its first epoch: its final results and weights are gone.
    trial2 = runs / "trial_2"
    for name in ("protocol_results.json", "model_final.pth"):
        (trial2 / name).unlink()
    (trial2 / "last_checkpoint").write_text("model_0000.pth")
    second = trials_cli(regdb_env)
    assert second.returncode == 0, second.stderr[-2000:]
    log1 = (runs / "trial_1" / "log.txt").read_text()
    log2 = (trial2 / "log.txt").read_text()
    assert log1.count("Starting training from epoch") == 1  # trial 1 was not run again
    assert "Starting training from epoch 1" in log2  # trial 2 resumed after epoch 0
    assert (trial2 / "protocol_results.json").is_file()


def test_a_split_whose_input_is_refused_ends_on_its_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "data"))  # no RegDB there
    done = trials_cli(tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2
    assert errors == [f"error: {tmp_path / 'data' / 'RegDB'}: data set folder not found (set "
                      "FASTREID_DATASETS; see datasets/README.md for the expected layout)"]
    assert done.stderr.strip().splitlines()[-1] == errors[0]


def run_regdb_trials(*argv: str) -> int:
    """tools/run_regdb_trials.py's command line, in this process; returns its exit code."""
    return load_script("projects/CIFT/tools/run_regdb_trials.py").main(list(argv))


def test_regdb_trial_runner_rejects_bad_trials(capsys):
    rc = run_regdb_trials("--config-file", str(ROOT / "configs/RegDB/baseline_R50.yml"),
                          "--splits", "0,11")
    stderr = capsys.readouterr().err
    assert rc == 2 and "1..10" in stderr and len(stderr.splitlines()) == 1


ITEMS = ([(f"v{i}", i % 3, 1 + i % 2, "visible") for i in range(6)]
         + [(f"t{i}", i % 3, 2, "infrared") for i in range(6)])


def test_regdb_tasks_cover_both_directions_with_the_right_branch():
    vt, tv = regdb_tasks(ITEMS, 6)
    assert (vt.name, vt.branch, tv.name, tv.branch) == ("visible-thermal", "r2i",
                                                        "thermal-visible", "i2r")
    (q, g), = vt.trials
    assert list(q) == list(range(6)) and list(g) == list(range(6, 12))
    (q, g), = tv.trials
    assert list(q) == list(range(6, 12)) and list(g) == list(range(6))


def llcm_items():
    vis = [(f"x/test_vis/cam{c}/{p:04d}/{n}.jpg", p, c, "visible")
           for p in (1, 2) for c in (1, 2) for n in range(2)]
    nir = [(f"x/test_nir/cam{c}/{p:04d}/{n}.jpg", p, c, "infrared")
           for p in (1, 2) for c in (1, 4) for n in range(2)]
    return vis + nir, len(vis)


def test_llcm_tasks_semantic_directions():
    items, nq = llcm_items()
    vis_ir, ir_vis = llcm_tasks(items, nq, trials=2)
    assert (vis_ir.branch, ir_vis.branch) == ("r2i", "i2r")
    for q, g in vis_ir.trials:
        assert all(items[i][3] == "visible" for i in q) and len(q) == nq
        assert all(items[i][3] == "infrared" for i in g) and len(g) == 4  # 2 ids x 2 cameras
    for q, g in ir_vis.trials:
        assert all(items[i][3] == "infrared" for i in q) and len(q) == len(items) - nq
        assert all(items[i][3] == "visible" for i in g) and len(g) == 4


def test_llcm_tasks_reference_vis_to_ir_ranks_drawn_infrared_queries():
    items, nq = llcm_items()
    vis_ir, _ = llcm_tasks(items, nq, trials=2, vis_to_ir="reference")
    assert vis_ir.branch == "i2r"
    for q, g in vis_ir.trials:
        assert all(items[i][3] == "infrared" for i in q) and len(q) == 4
        assert list(g) == list(range(nq))
    with pytest.raises(ValueError, match="VIS_TO_IR"):
        llcm_tasks(items, nq, vis_to_ir="published")


def test_regdb_split_runner_takes_splits_by_their_name(capsys):
    rc = run_regdb_trials("--config-file", str(ROOT / "configs/RegDB/baseline_R50.yml"),
                          "--splits", "3,12")
    stderr = capsys.readouterr().err
    assert rc == 2 and len(stderr.splitlines()) == 1
    assert "--splits" in stderr and "DATASETS.REGDB.SPLIT 12: expected an int in 1..10" in stderr

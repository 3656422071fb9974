"""Resume is bit-identical: a run stopped by kill -9, SIGTERM or SIGINT (before its first
checkpoint, mid-epoch, right after a checkpoint) and resumed with --resume computes the same raw
per-iteration losses, weights, results and metrics.json as the uninterrupted run (CPU, one
loader worker, whose generator a mid-epoch resume must bring back). Three representative cases
here; tests/run_interruptions.py runs all nine. Plus the resume refusals: another batch size,
another model, a finished run."""
from __future__ import annotations

import json
import shutil

import pytest

from cift.engine.resume import check_resume, epoch_seeds, truncate_metrics
from cift.errors import CiftInputError
from helpers import DEMO
from helpers.interruptions import interrupt_and_resume, records, uninterrupted
from helpers.runs import TINY, run_cli

WORKERS = ("DATALOADER.NUM_WORKERS", "1")


@pytest.fixture(scope="module")
def full_run(datasets_root, tmp_path_factory):
    return uninterrupted(tmp_path_factory.mktemp("full") / "run", datasets_root, *WORKERS)


@pytest.mark.parametrize("signal_name, point", [
    ("TERM", "mid-epoch"), ("INT", "after-checkpoint"), ("KILL", "before-first-checkpoint")])
def test_a_stopped_and_resumed_run_repeats_the_uninterrupted_one(full_run, datasets_root,
                                                                 tmp_path, signal_name, point):
    line = interrupt_and_resume(full_run, tmp_path / "run", datasets_root, signal_name, point,
                                *WORKERS)
    kept = {"mid-epoch": f"checkpoint written: {tmp_path / 'run' / 'model_interrupted.pth'}",
            "after-checkpoint": f"the last checkpoint, {tmp_path / 'run' / 'model_0000.pth'}, "
                                "holds this state"}
    if signal_name != "KILL":
        assert line.endswith(f"; {kept[point]}; continue with --resume"), line


def test_metrics_json_holds_every_iterations_raw_losses(full_run):
    """Each iteration once, with its own loss values (fastreid wrote 20-iteration medians,
    whose window a resumed run restarted)."""
    raw = records(full_run.with_suffix(".jsonl"))
    logged = [r for r in records(full_run / "metrics.json") if "total_loss" in r]
    assert [r["iteration"] for r in logged] == [r["iteration"] for r in raw] == list(range(6))
    for row, values in zip(logged, raw, strict=True):
        assert {k: v for k, v in row.items() if k in values} == values


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


def test_resume_from_a_checkpoint_that_is_gone_is_refused_before_writing(finished, env,
                                                                         tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    named = run / (run / "last_checkpoint").read_text().strip()
    named.unlink()
    log = (run / "log.txt").read_text()
    assert run_cli("--config-file", DEMO, "--resume", *TINY, "OUTPUT_DIR", str(run)) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --resume: {named}: checkpoint file not found (named by "
        f"{run / 'last_checkpoint'})")
    assert (run / "log.txt").read_text() == log  # nothing written


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


def test_resume_with_another_backbone_depth_is_refused_before_writing(finished, env, capsys):
    log = (finished / "log.txt").read_text()
    rc = run_cli("--config-file", DEMO, "--resume", *TINY, "OUTPUT_DIR", str(finished),
                 "MODEL.BACKBONE.DEPTH", "34x")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: --resume: {finished / 'model_final.pth'}: does not fit the "
                             "model built from the config")
    assert "missing from the file: backbone.layer1.2." in err[0]
    assert err[0].endswith("resume with the config it was trained with, or train into a new "
                           "OUTPUT_DIR")
    assert (finished / "log.txt").read_text() == log  # nothing written

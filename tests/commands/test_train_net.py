"""End to end through projects/CIFT/train_net.py on a tiny synthetic SYSU-layout data set (CPU):
train, checkpoint, resume, eval-only, and the bad inputs that must fail in one line."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from helpers import DEMO, DEMO_CIFT, ROOT, SETTINGS
from helpers.exports import export_model
from helpers.runs import TINY, args, run_cli, train_net


@pytest.fixture(scope="module")
def trained(demo_run):
    """The session's 2-iteration training run (conftest), shared by the tests below."""
    return demo_run


def check_protocol_results(results: dict, main: bool = True) -> None:
    metrics = results  # one test set: its metrics, as fastreid's checkpointer expects
    for setting in SETTINGS:
        for name in ("R1", "R5", "R10", "R20", "mAP", "mINP"):
            mean, std = metrics[setting][name], metrics[setting][name + "_std"]
            assert 0.0 <= mean <= 100.0 and std >= 0.0
        cmc = [metrics[setting][k] for k in ("R1", "R5", "R10", "R20")]
        assert cmc == sorted(cmc)
    if main:
        assert metrics["metric"] == metrics["all-single"]["mAP"]


def test_training_writes_checkpoints_and_reports_protocol(trained):
    out, results = trained
    check_protocol_results(results)
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    for name in ("model_0000.pth", "model_final.pth", "model_best.pth", "config.yaml",
                 "protocol_results.json", "cmc_SyntheticVI.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".tmp-*"))
    lines = (out / "metrics.json").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines]
    assert max(iterations) == 1
    checkpoint = torch.load(out / "model_final.pth", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert {"model", "optimizer", "run_state", "sampler"} <= set(checkpoint)


def test_eval_only_reproduces_the_final_evaluation(trained, env, tmp_path):
    out, results = trained
    weights = str(out / "model_final.pth")
    evaluated = train_net.main(args("MODEL.WEIGHTS", weights, out=tmp_path / "eval",
                                    flags=["--eval-only"]))
    check_protocol_results(evaluated)
    for setting in SETTINGS:
        assert evaluated[setting] == pytest.approx(results[setting], abs=1e-6)


def test_resume_continues_the_iteration_count(trained, env, tmp_path):
    out, _ = trained
    run_dir = tmp_path / "resumed"
    shutil.copytree(out, run_dir)
    before = torch.load(run_dir / "model_final.pth", weights_only=True)["model"]
    train_net.main(args("SOLVER.MAX_EPOCH", "3", "TEST.EVAL_PERIOD", "3", out=run_dir,
                        flags=["--resume"]))
    checkpoint = torch.load(run_dir / "model_final.pth", weights_only=True)
    assert checkpoint["epoch"] == 2
    lines = (run_dir / "metrics.json").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines]
    assert max(iterations) == 2
    log = (run_dir / "log.txt").read_text()
    assert "Starting training from epoch 2" in log
    changed = [k for k, v in checkpoint["model"].items()
               if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "resumed training did not update the model"


def test_training_updates_every_trainable_parameter(env, tmp_path):
    """Guards the optimizer wiring (a stale-gradient optimizer leaves weights untouched)."""
    from cift.engine import CIFTTrainer
    from cift.engine.setup import setup

    cfg = setup(args(out=tmp_path / "step"))
    trainer = CIFTTrainer(cfg)
    model = trainer.model
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    trainer.iter = 0
    trainer.begin_epoch(0)
    from fastreid.utils.events import EventStorage

    with EventStorage(0) as trainer.storage:
        trainer.run_step()
    frozen = [k for k, v in model.named_parameters()
              if v.requires_grad and torch.equal(v.detach(), before[k])]
    assert not frozen
    assert not model.heads.neck.bias.requires_grad


def test_missing_dataset_root_fails_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "nowhere"))
    out = tmp_path / "out"
    rc = run_cli("--config-file", str(ROOT / "configs/SYSU-MM01/baseline_R50.yml"),
                 "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert str(tmp_path / "nowhere" / "SYSU-MM01") in err and "not found" in err
    assert not out.exists()


def test_unknown_config_key_fails_in_one_line(tmp_path, env, capsys):
    config = tmp_path / "bad.yml"
    config.write_text(f"_BASE_: {DEMO}\nSOLVER:\n  NOT_A_KEY: 1\n")
    rc = run_cli("--config-file", str(config), "OUTPUT_DIR", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "bad.yml" in err and "NOT_A_KEY" in err
    assert not (tmp_path / "out").exists()


def test_missing_weights_fail_in_one_line(tmp_path, env, capsys):
    missing = tmp_path / "model_missing.pth"
    rc = run_cli("--config-file", DEMO, "--eval-only", "MODEL.WEIGHTS", str(missing),
                 "OUTPUT_DIR", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_unreadable_image_fails_in_one_line(datasets_root, tmp_path, monkeypatch, capsys):
    root = tmp_path / "datasets"
    shutil.copytree(datasets_root, root)
    for image in (root / "SyntheticVI" / "cam1").glob("*/*.jpg"):
        image.write_bytes(b"not an image")
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    rc = run_cli("--config-file", DEMO, *TINY, "SOLVER.ITERS_PER_EPOCH", "5",
                 "OUTPUT_DIR", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert str(root / "SyntheticVI" / "cam1") in err and "cannot read image" in err
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_cift_trains_and_evaluates_with_and_without_transfer(env, tmp_path):
    cift_config = DEMO_CIFT
    out = tmp_path / "cift"
    results = train_net.main(args("MODEL.CIFT.CRI.SAMPLES", "2", out=out, config=cift_config))
    assert set(results) == {"CIFT", "CIFT†", "metric"}
    for key in ("CIFT", "CIFT†"):
        check_protocol_results(results[key], main=False)
    assert results["metric"] == results["CIFT"]["all-single"]["mAP"]
    saved = json.loads((out / "protocol_results.json").read_text())
    assert saved["SyntheticVI"]["CIFT†"]["all-single"]["R1"] == pytest.approx(
        results["CIFT†"]["all-single"]["R1"])
    evaluated = train_net.main(args("MODEL.WEIGHTS", str(out / "model_final.pth"),
                                    "MODEL.CIFT.CRI.SAMPLES", "2", out=tmp_path / "eval",
                                    config=cift_config, flags=["--eval-only"]))
    for key in ("CIFT", "CIFT†"):
        for setting in SETTINGS:
            assert evaluated[key][setting] == pytest.approx(results[key][setting], abs=1e-6)


def test_eval_only_of_a_zoo_entry_leaves_the_training_run_alone(trained, env, tmp_path,
                                                                  monkeypatch):
    """The exported config.yaml and no OUTPUT_DIR: the evaluation writes to the entry's own
    logs/zoo/<entry>/eval/<weights> folder, and the training run's files stay as they were."""
    out, results = trained

    def run_files():  # log.txt aside: in one process fastreid's logger keeps every job's file
        return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".txt"}

    before = run_files()
    entry = tmp_path / "zoo" / "demo_baseline"
    assert export_model.run(["--config-file", DEMO, *TINY, "OUTPUT_DIR", str(out),
                             "MODEL.WEIGHTS", str(out / "model_final.pth"),
                             "--output", str(entry)]) == 0
    (weights,) = entry.glob("*.safetensors")
    # the run's config.yaml matches the export's config: its evaluation travels with the entry
    assert json.loads((entry / "metrics.json").read_text())["results"]["SyntheticVI"]["metric"] \
        == pytest.approx(results["metric"])
    monkeypatch.chdir(tmp_path)
    evaluated = train_net.main(train_net.default_argument_parser().parse_args(
        ["--config-file", str(entry / "config.yaml"), "--eval-only", "MODEL.WEIGHTS",
         str(weights)]))
    for setting in SETTINGS:
        assert evaluated[setting] == pytest.approx(results[setting], abs=1e-6)
    assert run_files() == before
    assert not (out / "eval").exists()
    written = tmp_path / "logs" / "zoo" / "demo_baseline" / "eval" / weights.stem
    for name in ("config.yaml", "log.txt", "protocol_results.json"):
        assert (written / name).is_file(), name

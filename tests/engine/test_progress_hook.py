"""A training run's header, its estimate of the training time and its progress display."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import cift.progress
from cift.config import load_config
from cift.engine import progress_hook
from cift.engine.progress_hook import TrainingProgress, describe_run
from helpers import DEMO_CIFT


def test_the_header_says_what_is_trained_how_long_and_where_the_log_goes():
    cfg = load_config(DEMO_CIFT, ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", "logs/x"])
    h, w = cfg.INPUT.SIZE_TRAIN
    header = describe_run(cfg, iterations=480, epochs=4).splitlines()
    assert header[0] == f"training CIFT on SyntheticVI, seed {cfg.SEED}"
    p = cfg.SOLVER.IMS_PER_BATCH // (2 * cfg.DATALOADER.NUM_INSTANCE)
    assert header[1] == (f"  ResNet-18 from scratch, {h}x{w} images, batches of {p} identities "
                         "x (4 visible + 4 infrared)")
    assert header[2].startswith("  480 iterations (4 epochs) on cpu, then evaluated on "
                                "SyntheticVI")
    assert header[3].endswith("logs/x/log.txt")
    resumed = describe_run(cfg, iterations=480, epochs=4, start_iter=120)
    assert "resumed at iteration 120" in resumed


def trainer(iterations: int, start_iter: int = 0):
    cfg = load_config(DEMO_CIFT, ["MODEL.DEVICE", "cpu", "OUTPUT_DIR", "logs/x"])
    return SimpleNamespace(cfg=cfg, max_iter=iterations, max_epoch=2, start_iter=start_iter,
                           iter=start_iter)


def run_steps(hook: TrainingProgress, steps: int) -> None:
    hook.before_train()
    for _ in range(steps):
        hook.after_step()
        hook.trainer.iter += 1
    hook.after_train()


def test_training_shows_header_estimate_lines_and_time(monkeypatch, caplog, capsys):
    monkeypatch.setattr(cift.progress, "LINE_PERIOD_S", 0.0)
    monkeypatch.setattr(progress_hook, "TIMED_ITERATIONS", 2)
    hook = TrainingProgress()
    hook.trainer = trainer(6, start_iter=2)  # resumed: 4 iterations to go
    with caplog.at_level(logging.INFO, logger="cift"):
        run_steps(hook, 4)
    said = [r.getMessage() for r in caplog.records if r.name == progress_hook.__name__]
    assert said[0].startswith("training CIFT on SyntheticVI")
    # timed over iterations 2 and 3 of the 4 (the first starts the loader's workers)
    assert said[1].startswith("about ") and "over 2 iterations" in said[1]
    assert said[2].startswith("trained 4 iterations in ")
    assert len(said) == 3
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "training: 3/6 it (50%)", "training: 4/6 it (67%)", "training: 5/6 it (83%)",
        "training: 6/6 it (100%)"]


def test_a_short_run_has_no_estimate_and_only_the_main_process_shows(monkeypatch, caplog):
    hook = TrainingProgress()
    hook.trainer = trainer(3)
    with caplog.at_level(logging.INFO, logger="cift"):
        run_steps(hook, 3)
    said = [r.getMessage() for r in caplog.records if r.name == progress_hook.__name__]
    assert len(said) == 2 and said[1].startswith("trained 3 iterations")
    caplog.clear()
    monkeypatch.setattr(progress_hook.comm, "is_main_process", lambda: False)
    hook = TrainingProgress()
    hook.trainer = trainer(3)
    with caplog.at_level(logging.INFO, logger="cift"):
        run_steps(hook, 3)
    assert not caplog.records

"""What train_net's set-up says about the job: the CPU fallback when no GPU is visible, and
the seed actually in force."""
from __future__ import annotations

import logging

import pytest
import torch

from cift.engine.setup import setup
from helpers import DEMO
from helpers.runs import args, run_cli

FALLBACK = "no GPU is visible: MODEL.DEVICE defaults to cpu"


@pytest.fixture()
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_fallback_is_warned(env, tmp_path, no_gpu, caplog):
    with caplog.at_level(logging.INFO, logger="cift"):
        cfg = setup(args(out=tmp_path / "run"))
    assert cfg.MODEL.DEVICE == "cpu"
    warnings = [r for r in caplog.records if FALLBACK in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_an_explicit_cpu_device_is_not_warned(env, tmp_path, no_gpu, caplog):
    with caplog.at_level(logging.INFO, logger="cift"):
        cfg = setup(args("MODEL.DEVICE", "cpu", out=tmp_path / "run"))
    assert cfg.MODEL.DEVICE == "cpu"
    assert FALLBACK not in caplog.text


@pytest.mark.parametrize("seed, said", [
    ("0", "SEED 0: python, numpy and torch seeded with 0"),
    ("-1", "SEED -1: the generated random seed logged above is in force"),
])
def test_the_seed_in_force_is_logged(env, tmp_path, caplog, seed, said):
    with caplog.at_level(logging.INFO, logger="cift"):
        setup(args("SEED", seed, out=tmp_path / "run"))
    assert said in caplog.text


def test_a_ranking_metric_other_than_cosine_is_refused(env, tmp_path, capsys):
    out = tmp_path / "out"
    rc = run_cli("--config-file", DEMO, "TEST.METRIC", "euclidean", "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "TEST.METRIC 'euclidean'" in err and "cosine" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, line", [
    ([], "error: --config-file: required (e.g. --config-file "
         "configs/Demo/baseline_synthetic.yml)"),
    (["--config-file", DEMO, "--num-gpus", "0"], "error: --num-gpus 0: expected an int >= 1"),
    (["--config-file", DEMO, "--num-gpus", "-2"], "error: --num-gpus -2: expected an int >= 1"),
    (["--config-file", DEMO, "--num-machines", "0"],
     "error: --num-machines 0: expected an int >= 1"),
    (["--config-file", DEMO, "--machine-rank", "1"],
     "error: --machine-rank 1: expected an int in 0..0 (--num-machines 1)"),
    (["--config-file", DEMO, "--num-gpus", "2", "--dist-url", "garbage"],
     "error: --dist-url 'garbage': expected auto, tcp://HOST:PORT, file:///PATH or env://"),
    (["--config-file", DEMO, "--dist-url", "tcp://host"],
     "error: --dist-url 'tcp://host': expected auto, tcp://HOST:PORT, file:///PATH or env://"),
])
def test_launch_flags_are_checked_in_one_line(argv, line, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*argv) == 2
    assert capsys.readouterr().err.strip() == line
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_malformed_flag_is_one_line(capsys):
    assert run_cli("--config-file", DEMO, "--num-gpus", "two") == 2
    assert capsys.readouterr().err.strip() == (
        "error: argument --num-gpus: invalid int value: 'two'")

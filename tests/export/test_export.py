"""Model-zoo export (projects/CIFT/tools/export_model.py): weights-only safetensors named by
their hash, resolved config, the run's metrics, atomic writes, no silent overwrite, and a
round trip that gives the trained model's features bit for bit."""
from __future__ import annotations

import argparse
import hashlib
import json
import re

import pytest
import torch
from safetensors.torch import load_file

from cift.config import load_config
from cift.engine.checkpoint import AtomicCheckpointer, load_checkpoint_file
from cift.evaluation.report import RESULTS_FILE
from cift.export import load_model_from_files, safetensors_metadata
from helpers.exports import (
    NUM_CLASSES,
    RESULTS,
    export,
    images,
    trained_like,
    write_run,
)


@pytest.fixture(scope="module")
def cift_run(tmp_path_factory):
    model = trained_like("CIFT")
    return model, write_run(tmp_path_factory.mktemp("run"), model)


def test_entry_holds_weights_config_and_metrics(cift_run, tmp_path, capsys):
    model, weights = cift_run
    out = tmp_path / "zoo"
    assert export(weights, out, "MODEL.DEVICE", "cuda") == 0  # exported on the CPU all the same
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and names[:2] == ["config.yaml", "metrics.json"]
    assert re.fullmatch(r"model_final_[0-9a-f]{8}\.safetensors", names[2])
    data = (out / names[2]).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert names[2] == f"model_final_{digest[:8]}.safetensors"
    assert digest in capsys.readouterr().out
    # weights only: exactly the model's tensors, equal to the checkpoint's
    tensors = load_file(out / names[2])
    assert set(tensors) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(tensors[key], value), key
    assert safetensors_metadata(str(out / names[2])) == {"format": "pt"}
    cfg = load_config(str(out / "config.yaml"))
    assert cfg.MODEL.HEADS.NUM_CLASSES == NUM_CLASSES
    assert cfg.MODEL.META_ARCHITECTURE == "CIFT" and cfg.MODEL.BACKBONE.DEPTH == "18x"
    assert cfg.MODEL.WEIGHTS == "" and not cfg.MODEL.BACKBONE.PRETRAIN
    assert cfg.MODEL.DEVICE == "cuda"  # the training config's device
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"] == RESULTS
    assert metrics["weights"] == names[2] and metrics["sha256"] == digest
    assert metrics["checkpoint"] == "model_final.pth" and metrics["source"] == RESULTS_FILE
    assert not list(out.glob(".tmp-*"))


def test_round_trip_gives_identical_features(cift_run, tmp_path):
    model, weights = cift_run
    out = tmp_path / "zoo"
    assert export(weights, out) == 0
    exported = next(out.glob("*.safetensors"))
    loaded = load_model_from_files(str(out / "config.yaml"), ["MODEL.WEIGHTS", str(exported)])
    x = images()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
        g, q = loaded.model(x)[:, 1], model(images(seed=2))[:, 1]
        assert all(torch.equal(a, b) for a, b in zip(
            loaded.model.transfer_test_features(g, q, "i2r"),
            model.transfer_test_features(g, q, "i2r"), strict=True))


def test_export_is_deterministic_and_refuses_to_overwrite(cift_run, tmp_path, capsys):
    _, weights = cift_run
    out = tmp_path / "zoo"
    assert export(weights, out) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert export(weights, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--force" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert export(weights, out, "--force") == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_force_replaces_an_entry_of_other_weights(cift_run, tmp_path):
    _, weights = cift_run
    out = tmp_path / "zoo"
    assert export(weights, out) == 0
    old = next(out.glob("*.safetensors")).name
    other = write_run(tmp_path / "other", trained_like("CIFT", seed=5), name="model_0000")
    assert export(other, out, "--force") == 0
    files = sorted(p.name for p in out.iterdir())
    assert old not in files and len(files) == 3
    assert json.loads((out / "metrics.json").read_text())["weights"] in files


def test_metrics_only_from_the_runs_last_checkpoint(tmp_path):
    model = trained_like("VIBaseline")
    run = tmp_path / "run"
    weights = write_run(run, model, name="model_0000")
    write_run(run, model, name="model_final")  # last_checkpoint now names model_final.pth
    assert export(weights, tmp_path / "a", arch="VIBaseline") == 0
    assert not (tmp_path / "a" / "metrics.json").exists()
    given = tmp_path / "eval.json"
    given.write_text(json.dumps({"x": 1}))
    assert export(weights, tmp_path / "b", "--metrics", str(given), arch="VIBaseline") == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["results"] == {"x": 1}


def test_exported_weights_load_through_model_weights_with_training_checkpointer(cift_run,
                                                                                tmp_path):
    """MODEL.WEIGHTS of a .safetensors file through the checkpointer training uses."""
    model, weights = cift_run
    out = tmp_path / "zoo"
    assert export(weights, out) == 0
    exported = str(next(out.glob("*.safetensors")))
    content = load_checkpoint_file(exported)
    assert set(content) == set(model.state_dict())
    fresh = trained_like("CIFT", seed=9)
    AtomicCheckpointer(fresh).load(exported)
    x = images()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_missing_weights_fail_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nothing.pth"
    assert export(missing, tmp_path / "zoo") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "not found" in err
    assert not (tmp_path / "zoo").exists()


def test_wrong_architecture_fails_naming_parameters(tmp_path, capsys):
    weights = write_run(tmp_path / "run", trained_like("VIBaseline"))
    assert export(weights, tmp_path / "zoo", arch="CIFT") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(weights) in err
    assert "missing from the file: heads.b." in err
    assert "not in the model: heads.classifier.weight, heads.neck.bias" in err
    assert not (tmp_path / "zoo").exists()


def test_unsafe_checkpoint_needs_the_trust_flag(tmp_path, capsys):
    model = trained_like("VIBaseline")
    weights = tmp_path / "with_args.pth"
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, weights)
    assert export(weights, tmp_path / "zoo", arch="VIBaseline") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused" in err and str(weights) in err
    assert not (tmp_path / "zoo").exists()
    assert export(weights, tmp_path / "zoo", "--trust-checkpoint", arch="VIBaseline") == 0
    (exported,) = (tmp_path / "zoo").glob("*.safetensors")
    assert set(load_file(exported)) == set(model.state_dict())  # the Namespace is not exported


def test_entry_config_does_not_point_at_the_training_run(cift_run, tmp_path):
    _, weights = cift_run
    out = tmp_path / "sysu_cift"
    assert export(weights, out) == 0
    cfg = load_config(str(out / "config.yaml"))
    assert cfg.OUTPUT_DIR == "logs/zoo/sysu_cift"
    assert str(weights.parent) not in (out / "config.yaml").read_text()


def test_metrics_of_another_config_are_not_attached(tmp_path, capsys, caplog):
    model = trained_like("VIBaseline")
    weights = write_run(tmp_path / "run", model, opts=("TEST.SYSU.TRIALS", "3"))
    assert export(weights, tmp_path / "a", arch="VIBaseline") == 0
    assert not (tmp_path / "a" / "metrics.json").exists()
    assert "TEST.SYSU.TRIALS" in caplog.text
    # the same config (device and output folder aside): attached, with the config's hash
    assert export(weights, tmp_path / "b", "TEST.SYSU.TRIALS", "3", "MODEL.DEVICE", "cuda",
                  arch="VIBaseline") == 0
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    from cift.export.model_zoo import config_sha256

    entry_cfg = load_config(str(tmp_path / "b" / "config.yaml"))
    assert metrics["config_sha256"] == config_sha256(entry_cfg)
    # --metrics FILE beside the config.yaml of another config: refused in one line
    capsys.readouterr()
    rc = export(weights, tmp_path / "c", "--metrics", str(tmp_path / "run" / RESULTS_FILE),
                arch="VIBaseline")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "TEST.SYSU.TRIALS" in err
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())

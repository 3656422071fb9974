"""Loading MODEL.WEIGHTS without unpickling code: .safetensors and weights-only .pth files,
one-line refusals naming the file (missing, truncated, pickled objects), the explicit trust
opt-in, and parameter mismatches reported by name."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import torch
from fastreid.modeling.meta_arch import build_model
from safetensors.torch import save_file

from cift.config import load_config
from cift.data.synthetic import ensure_synthetic_sysu
from cift.engine.checkpoint import (
    AtomicCheckpointer,
    load_checkpoint_file,
    load_weights_only,
    num_classes_in_checkpoint,
)
from cift.export import load_inference_model
from helpers import DEMO, DEMO_CIFT
from helpers.errors import error_line, one_line_error
from helpers.runs import TINY, run_cli
from helpers.unpickling import WritesAFile

CIFT, BASELINE = DEMO_CIFT, DEMO


def tiny(config: str = CIFT, *opts: str):
    cfg = load_config(config, [*TINY, "MODEL.HEADS.NUM_CLASSES", "6", *opts])
    torch.manual_seed(0)
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    AtomicCheckpointer(model, str(run)).save("model_final", epoch=3)
    return run / "model_final.pth"


def test_pth_and_safetensors_give_the_same_tensors(model, checkpoint, tmp_path):
    pth = load_checkpoint_file(str(checkpoint))
    assert pth["epoch"] == 3 and set(pth["model"]) == set(model.state_dict())
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    flat = load_weights_only(str(path))
    assert all(torch.equal(flat[k], v) for k, v in pth["model"].items())
    # safetensors content is recognised under another name too
    renamed = tmp_path / "weights.pth"
    renamed.write_bytes(path.read_bytes())
    assert set(load_checkpoint_file(str(renamed))) == set(flat)
    assert num_classes_in_checkpoint(str(path)) == num_classes_in_checkpoint(str(checkpoint)) == 6


def test_missing_file(tmp_path):
    missing = tmp_path / "absent.pth"
    message = one_line_error(load_checkpoint_file, str(missing))
    assert str(missing) in message and "not found" in message
    message = one_line_error(AtomicCheckpointer(tiny()).load, str(missing))
    assert str(missing) in message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(model, checkpoint, tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".pth":
        whole.write_bytes(checkpoint.read_bytes())
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(whole))
    data = whole.read_bytes()
    for cut in (0, 5, len(data) // 2, len(data) - 10):
        truncated = tmp_path / f"truncated_{cut}{suffix}"
        truncated.write_bytes(data[:cut])
        message = one_line_error(load_checkpoint_file, str(truncated))
        assert str(truncated) in message and "truncated or corrupt" in message


@pytest.mark.parametrize("content", [b"notes about the run\n", b"\x00\x01\x02\x03 binary"])
def test_a_file_that_is_no_checkpoint_is_called_so(tmp_path, content):
    other = tmp_path / "notes.pth"
    other.write_bytes(content)
    for load in (load_checkpoint_file, AtomicCheckpointer(tiny()).load):
        assert one_line_error(load, str(other)) == (
            f"{other}: not a checkpoint (neither a torch.save archive nor a .safetensors file)")


def test_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"model": {"w": torch.ones(2)}, "extra": WritesAFile(marker)}, unsafe)
    for load in (load_checkpoint_file, load_weights_only, num_classes_in_checkpoint,
                 AtomicCheckpointer(tiny()).load):
        message = one_line_error(load, str(unsafe))
        assert message.startswith(f"{unsafe}: refused") and "GLOBAL" in message
        assert "--trust-checkpoint" in message
    assert not marker.exists()


def test_trust_opt_in_loads_arbitrary_objects(model, tmp_path):
    path = tmp_path / "with_namespace.pth"
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    one_line_error(load_checkpoint_file, str(path))
    assert load_checkpoint_file(str(path), trust=True)["args"].lr == 0.1
    fresh = tiny(CIFT, "SEED", "3")
    torch.manual_seed(3)
    AtomicCheckpointer(fresh, strict=True, trust=True).load(str(path))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 model.state_dict().values(), strict=True))


def test_wrong_architecture_is_reported_by_name(checkpoint):
    message = one_line_error(AtomicCheckpointer(tiny(BASELINE), strict=True).load,
                             str(checkpoint))
    assert str(checkpoint) in message and "another architecture" in message
    assert "missing from the file: heads.classifier.weight" in message
    assert "not in the model: heads.b.classifier.weight" in message
    deeper = tiny(CIFT, "MODEL.BACKBONE.DEPTH", "34x")
    message = one_line_error(AtomicCheckpointer(deeper, strict=True).load, str(checkpoint))
    assert "missing from the file: backbone.layer1.2." in message


def test_shape_mismatch_is_reported_by_name(checkpoint, caplog):
    other = load_config(CIFT, [*TINY, "MODEL.HEADS.NUM_CLASSES", "7"])
    message = one_line_error(AtomicCheckpointer(build_model(other), strict=True).load,
                             str(checkpoint))
    assert "heads.b.classifier.weight (6, 512) in the file, (7, 512) in the model" in message
    # training initialisation (not strict) loads what fits and logs the rest by name
    with caplog.at_level(logging.WARNING):
        AtomicCheckpointer(build_model(other)).load(str(checkpoint))
    assert "heads.i2r.classifier.weight" in caplog.text


def test_parameters_inference_never_reads_only_warn(checkpoint, caplog):
    """CRI's nodes follow the training job's per-GPU batch; inference ignores them."""
    cfg = load_config(CIFT, [*TINY, "MODEL.WEIGHTS", str(checkpoint), "SOLVER.IMS_PER_BATCH",
                             "32"])
    with caplog.at_level(logging.WARNING):
        loaded = load_inference_model(cfg)
    assert "cri.mean" in caplog.text
    assert loaded.cfg.MODEL.HEADS.NUM_CLASSES == 6 and not loaded.model.training


def test_per_branch_cri_checkpoint_evaluates_with_shared_cri(tmp_path):
    """A checkpoint trained with MODEL.CIFT.CRI.SHARED False (cri.r2i.*, cri.i2r.*) loads
    strictly into today's shared-CRI model: inference never reads CRI."""
    old = tiny(CIFT, "MODEL.CIFT.CRI.SHARED", "False")
    AtomicCheckpointer(old, str(tmp_path)).save("per_branch")
    shared = tiny(CIFT)
    checkpointer = AtomicCheckpointer(shared, strict=True)
    checkpointer.load(str(tmp_path / "per_branch.pth"))
    assert "cri.r2i.mean" in checkpointer.loaded_state and "cri.mean" in shared.state_dict()
    assert all(torch.equal(v, old.state_dict()[k]) for k, v in shared.state_dict().items()
               if not k.startswith("cri."))


def test_inference_needs_weights(tmp_path):
    message = one_line_error(load_inference_model, load_config(CIFT, TINY))
    assert "MODEL.WEIGHTS" in message
    missing = str(tmp_path / "x.safetensors")
    message = one_line_error(load_inference_model,
                             load_config(CIFT, [*TINY, "MODEL.WEIGHTS", missing]))
    assert missing in message and "not found" in message


@pytest.fixture()
def datasets(tmp_path_factory, monkeypatch):
    """Test data for train_net.py; the console handlers its set-up adds to the fastreid and
    cift loggers write to this test's captured stderr, so they are removed afterwards (later
    tests would otherwise log into a closed stream)."""
    root = tmp_path_factory.mktemp("datasets")
    ensure_synthetic_sysu(root / "SyntheticVI", num_ids=12, images_per_camera=10, test_ids=4,
                          val_ids=2, seed=0)
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    loggers = [logging.getLogger(name) for name in ("fastreid", "cift")]
    before = [list(logger.handlers) for logger in loggers]
    yield root
    for logger, handlers in zip(loggers, before, strict=True):
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)


def test_train_net_eval_only_refuses_unsafe_weights(datasets, tmp_path, capsys):
    marker = tmp_path / "code_ran"
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"model": {"w": torch.ones(2)}, "extra": WritesAFile(marker)}, unsafe)
    rc = run_cli("--config-file", CIFT, "--eval-only", *TINY, "MODEL.WEIGHTS", str(unsafe),
                 "OUTPUT_DIR", str(tmp_path / "out"))
    err = error_line(capsys)
    assert rc == 2 and str(unsafe) in err and "refused" in err and "--trust-checkpoint" in err
    assert not marker.exists()


def test_train_net_eval_only_refuses_a_checkpoint_that_does_not_fit(datasets, checkpoint,
                                                                     tmp_path, capsys):
    rc = run_cli("--config-file", BASELINE, "--eval-only", *TINY, "MODEL.WEIGHTS",
                 str(checkpoint), "OUTPUT_DIR", str(tmp_path / "out"))
    err = error_line(capsys)
    assert rc == 2 and str(checkpoint) in err and "heads.classifier.weight" in err


def test_non_finite_weights_are_refused_naming_the_first_tensor(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["heads.b.neck.weight"][2] = float("inf")
    state["backbone.conv1.weight"].view(-1)[5] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    for strict in (True, False):  # evaluation and training initialisation alike
        message = one_line_error(AtomicCheckpointer(tiny(), strict=strict).load, str(path))
        assert message == (f"{path}: backbone.conv1.weight holds NaN or inf values (2 tensors "
                           "in all); refusing to load weights that are not finite")


def test_training_from_weights_that_fit_nothing_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.ones(4, 4), "encoder.bias": torch.ones(4)}, str(path))
    fresh = tiny()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    message = one_line_error(AtomicCheckpointer(fresh).load, str(path))
    assert message.startswith(f"{path}: none of its 2 tensors fits the model built from the "
                              f"config (0 of {len(before)} would load")
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())


def test_a_partial_fit_is_logged_with_counts_and_groups(checkpoint, caplog):
    deeper = tiny(CIFT, "MODEL.BACKBONE.DEPTH", "34x")
    own = deeper.state_dict()
    saved = torch.load(checkpoint, weights_only=True)["model"]
    fit = [k for k, v in saved.items() if k in own and v.shape == own[k].shape]
    with caplog.at_level(logging.WARNING):
        AtomicCheckpointer(deeper).load(str(checkpoint))
    lines = [r.getMessage() for r in caplog.records if "keep their initial values" in
             r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith(f"{checkpoint}: loaded {len(fit)} of the model's {len(own)} "
                               "tensors; the others keep their initial values: backbone.layer1 (")

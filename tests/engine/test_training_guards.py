"""Training stops cleanly: a loss that is not finite, weights that became NaN, an image that
does not decode in a loader worker, and SIGINT / SIGTERM outside the training loop each end
train_net with one line, no traceback, and nothing written as if it were good (the last good
checkpoint stays the last one).
A checkpoint that hits the file-size limit is one line too. (Signals inside the training
loop: tests/engine/test_resume.py.)"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fastreid.engine.train_loop import SimpleTrainer
from PIL import Image

from cift.data import image_check
from cift.engine import CIFTTrainer
from cift.engine.step_guards import FiniteLossStep, NonFiniteLoss, guard_finite_loss
from cift.modeling.meta_arch.cift import VIBaseline
from helpers import DEMO, ROOT
from helpers.runs import TINY, run_cli

THREE_EPOCHS = ["SOLVER.MAX_EPOCH", "3", "TEST.EVAL_PERIOD", "100"]  # iterations 0, 1, 2


def one_line(capsys) -> tuple[str, str]:
    """The one `error:` / `interrupted:` line of a run and everything it printed."""
    out, err = capsys.readouterr()
    ends = [x for x in err.splitlines() if x.startswith(("error:", "interrupted:"))]
    assert len(ends) == 1, err
    return ends[0], out + err


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]


def losses_at(iteration: int, term: str, value):
    """VIBaseline.losses with `term` added at training iteration `iteration` (calls count)."""
    real, calls = VIBaseline.losses, []

    def losses(self, pool, *args):
        out = real(self, pool, *args)
        if len(calls) == iteration:
            out[term] = value(pool)
        calls.append(1)
        return out

    return losses


def test_a_non_finite_loss_stops_in_one_line_keeping_the_last_checkpoint(env, tmp_path,
                                                                        monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setattr(VIBaseline, "losses",
                        losses_at(2, "loss_nan", lambda pool: pool.sum() * float("nan")))
    assert run_cli("--config-file", DEMO, *TINY, *THREE_EPOCHS, "OUTPUT_DIR", str(out)) == 1
    line, printed = one_line(capsys)
    assert line == (f"error: iteration 2: the loss is not finite (loss_nan nan); the step was "
                    f"not applied; nothing of it was written, and the last checkpoint stays "
                    f"{out / 'model_0001.pth'} (lower SOLVER.BASE_LR, or check the inputs)")
    assert "Traceback" not in printed
    assert (out / "last_checkpoint").read_text() == "model_0001.pth"
    assert not (out / "model_final.pth").exists() and not (out / "protocol_results.json").exists()
    assert [r["iteration"] for r in records(out)] == [0, 1]


def test_weights_that_became_non_finite_are_not_checkpointed(env, tmp_path, monkeypatch,
                                                            capsys):
    """A finite loss whose gradient is NaN (sqrt at 0): the weights turn NaN after iteration 0,
    and the checkpoint at the end of epoch 0 is refused, not written."""
    out = tmp_path / "run"
    monkeypatch.setattr(VIBaseline, "losses",
                        losses_at(0, "loss_sqrt", lambda pool: (pool.sum() * 0).sqrt()))
    assert run_cli("--config-file", DEMO, *TINY, *THREE_EPOCHS, "OUTPUT_DIR", str(out)) == 1
    line, printed = one_line(capsys)
    assert line.startswith("error: the model holds NaN or inf values (")
    assert line.endswith(" at model_0000.pth, which was not written; there is no good "
                         "checkpoint yet (the loss or the learning rate ran away: see "
                         "SOLVER.BASE_LR)")
    assert "Traceback" not in printed
    assert not list(out.glob("*.pth")) and not (out / "last_checkpoint").exists()


def test_an_image_that_fails_in_a_loader_worker_is_one_line(datasets_root, tmp_path,
                                                           monkeypatch, capsys):
    root = tmp_path / "datasets"
    shutil.copytree(datasets_root, root)
    (root / "SyntheticVI" / image_check.CACHE_NAME).unlink(missing_ok=True)
    broken = sorted((root / "SyntheticVI" / "cam3").glob("*/*.jpg"))[0]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    out = tmp_path / "run"
    rc = run_cli("--config-file", DEMO, *TINY, "DATALOADER.CHECK_IMAGES", "False",
                 "DATALOADER.NUM_WORKERS", "1", "OUTPUT_DIR", str(out))
    line, printed = one_line(capsys)
    assert rc == 2 and line.startswith(f"error: {broken}: cannot read image ("), line
    assert "Traceback" not in printed


def test_a_decompression_bomb_in_the_gallery_is_one_line(demo_run, env, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # every test image is now a bomb
    rc = run_cli("--config-file", DEMO, "--eval-only", *TINY, "DATALOADER.CHECK_IMAGES",
                 "False", "MODEL.WEIGHTS", str(demo_run[0] / "model_final.pth"), "OUTPUT_DIR",
                 str(tmp_path / "eval"))
    line, printed = one_line(capsys)
    assert rc == 2 and ": cannot read image (Image size (" in line, line
    assert "decompression bomb" in line and "Traceback" not in printed


@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_before_training_is_one_line(env, tmp_path, monkeypatch, capsys, name, status):
    def signalled(self, cfg):
        os.kill(os.getpid(), signal.Signals[name])

    monkeypatch.setattr(CIFTTrainer, "__init__", signalled)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    rc = run_cli("--config-file", DEMO, *TINY, "OUTPUT_DIR", str(tmp_path / "run"))
    line, printed = one_line(capsys)
    assert (rc, line) == (status, f"interrupted: {name} received")
    assert "Traceback" not in printed
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers come back


def test_a_checkpoint_past_the_file_size_limit_ends_the_run_in_one_line(datasets_root,
                                                                       tmp_path):
    """train_net under RLIMIT_FSIZE (SIGXFSZ ignored, as Python starts): the first checkpoint
    (tens of MB) cannot be written; the run says so in one line and leaves nothing partial."""
    out = tmp_path / "run"
    limit = 5_000_000

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, str(ROOT / "projects/CIFT/train_net.py"), "--config-file", DEMO, *TINY,
         "OUTPUT_DIR", str(out)], capture_output=True, text=True, timeout=900,
        preexec_fn=limited, env={**os.environ, "FASTREID_DATASETS": str(datasets_root)})
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert errors == [f"error: {out / 'model_0000.pth'}: cannot write (File too large [EFBIG]); "
                      "nothing partial was left and the file, if it existed, keeps its previous "
                      "content"]
    assert "Traceback" not in done.stdout + done.stderr
    assert not list(out.glob("*.pth")) and not list(out.glob(".tmp-*"))


def test_the_finite_loss_guard_joins_whichever_step_class_the_config_picks():
    class AnotherStep(SimpleTrainer):  # as fastreid's AMPTrainer or an autocast step
        pass

    model = torch.nn.Linear(2, 1)
    step = guard_finite_loss(AnotherStep(model, [], torch.optim.SGD(model.parameters(), 0.1),
                                         None))
    assert isinstance(step, AnotherStep) and isinstance(step, FiniteLossStep)
    assert guard_finite_loss(step) is step and type(step).__mro__.count(FiniteLossStep) == 1
    step.iter = 7
    with pytest.raises(NonFiniteLoss) as err:
        step._write_metrics({"loss_a": torch.tensor(float("nan")), "loss_b": torch.tensor(1.0),
                             "loss_c": torch.tensor(float("-inf"))}, 0.0)
    assert str(err.value) == ("iteration 7: the loss is not finite (loss_a nan, loss_c -inf); "
                              "the step was not applied")

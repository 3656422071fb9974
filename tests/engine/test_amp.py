"""SOLVER.AMP.ENABLED: the training step runs its forward pass under autocast (bfloat16 on the
CPU and on GPUs that support it, float16 with gradient scaling otherwise), and the trainer
builds that step."""
from __future__ import annotations

import pytest
import torch
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.utils.events import EventStorage

from cift.config import load_config
from cift.engine import CIFTTrainer
from cift.engine.amp import AutocastTrainer, autocast_dtype
from cift.engine.step_guards import FiniteLossStep
from helpers import DEMO


class Recorder(torch.nn.Module):
    """A linear model returning a loss dict, recording the dtype its forward computes in."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.seen: list[torch.dtype] = []

    def forward(self, batch):
        out = self.linear(batch["x"])
        self.seen.append(out.dtype)
        return {"loss": ((out.float() - batch["y"]) ** 2).mean()}


def batches(n: int):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, 4, generator=generator)
    return [{"x": x[i], "y": x[i].sum(dim=1, keepdim=True)} for i in range(n)]


def train(trainer_cls, steps: int = 40, **kwargs):
    torch.manual_seed(0)
    model = Recorder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = trainer_cls(model, batches(steps), optimizer, None, **kwargs)
    # fastreid's _write_metrics stores the losses in the current EventStorage
    with EventStorage(0) as storage:
        for i in range(steps):
            trainer.iter = storage.iter = i
            trainer.run_step()
        losses = [v for v, _ in storage.history("total_loss").values()]
    return model, trainer, losses


def test_cpu_autocasts_to_bfloat16():
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_autocast_dtype_follows_bfloat16_support():
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert autocast_dtype(torch.device("cuda")) == expected


def test_bfloat16_step_runs_the_forward_in_bfloat16_and_trains_like_float32():
    model, trainer, losses = train(AutocastTrainer, device=torch.device("cpu"))
    assert set(model.seen) == {torch.bfloat16}
    assert trainer.grad_scaler is None  # bfloat16 needs no loss scaling
    assert all(p.dtype == torch.float32 for p in model.parameters())
    reference_model, _, reference = train(SimpleTrainer)
    assert set(reference_model.seen) == {torch.float32}
    assert losses[-1] < 0.1 * losses[0]
    # the same path as float32, up to bfloat16's 8-bit mantissa
    for p, q in zip(model.parameters(), reference_model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=0.05)


def test_float16_step_scales_the_loss():
    model, trainer, losses = train(AutocastTrainer, device=torch.device("cpu"),
                                   dtype=torch.float16)
    assert set(model.seen) == {torch.float16}
    assert isinstance(trainer.grad_scaler, torch.amp.GradScaler)
    assert trainer.grad_scaler.get_scale() > 1  # the loss was scaled
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("amp", [False, True])
def test_trainer_builds_the_step_solver_amp_asks_for(amp):
    cfg = load_config(DEMO, ["MODEL.DEVICE", "cpu", "SOLVER.AMP.ENABLED", str(amp)])
    model = Recorder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = CIFTTrainer.build_step_trainer(cfg, model, [], optimizer, None, sampler=object())
    # the finite-loss guard is mixed into the class the config picks (cift.engine.step_guards)
    assert type(step).__bases__ == (FiniteLossStep, AutocastTrainer if amp else SimpleTrainer)
    if amp:
        assert step.dtype == torch.bfloat16 and step.grad_scaler is None

"""Training steps that stop cleanly: a loss that is not finite ends the run in one line, before
the optimizer applies the step, on every process of the job at once.

fastreid's SimpleTrainer checks the summed loss on the main process only and raises a
FloatingPointError with a traceback; the other processes then wait for it until the
collective timeout. Here every process learns whether any of them saw a non-finite loss (one
all-reduce of a flag) and all raise :class:`NonFiniteLoss`, naming the iteration and the
terms that are not finite.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.utils import comm

from ..errors import CiftJobError


class NonFiniteLoss(CiftJobError):
    """A training step's loss was NaN or ±inf; the step was not applied."""


def any_process(flag: bool, device: torch.device | str = "cpu") -> bool:
    """Whether `flag` is true on any process of the job (a collective: every process calls it
    at the same point); `device` is where the collective's tensor lives (the GPU under NCCL)."""
    if comm.get_world_size() == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def non_finite_terms(values: dict[str, float]) -> str:
    """'loss_cls nan, loss_x inf' for the terms of `values` that are not finite."""
    return ", ".join(f"{name} {value}" for name, value in values.items()
                     if not math.isfinite(value))


class FiniteLossStep:
    """Mixin for fastreid's SimpleTrainer / AMPTrainer (listed first): the step's metrics are
    written only when every loss term of every process is finite; otherwise NonFiniteLoss,
    raised after the backward pass and before the optimizer step (the weights stay those of
    the previous iteration)."""

    def _write_metrics(self, loss_dict: dict[str, torch.Tensor], data_time: float) -> None:
        terms = torch.stack([v.detach().float().sum() for v in loss_dict.values()])
        local = not bool(torch.isfinite(terms).all())
        if any_process(local, terms.device):
            values = dict(zip(loss_dict, terms.tolist(), strict=True))
            where = non_finite_terms(values) if local else "on another process"
            raise NonFiniteLoss(f"iteration {self.iter}: the loss is not finite ({where}); "
                                "the step was not applied")
        super()._write_metrics(loss_dict, data_time)


def guard_finite_loss(step: SimpleTrainer) -> SimpleTrainer:
    """`step` (fastreid's SimpleTrainer or any subclass of it) with :class:`FiniteLossStep`'s
    guard mixed into its class: the trainer picks the step's class from the config, and the
    guard belongs to every one of them."""
    cls = type(step)
    if not isinstance(step, FiniteLossStep):
        if cls not in _GUARDED:
            _GUARDED[cls] = type(f"FiniteLoss{cls.__name__}", (FiniteLossStep, cls), {})
        step.__class__ = _GUARDED[cls]
    return step


_GUARDED: dict[type, type] = {}

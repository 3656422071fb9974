"""Learning rate as a function of the epoch (the authors' ``adjust_learning_rate``).

Epoch ``e`` (1-based) uses ``lr_group · lr_factor(e, ...)``: a warm-up factor times
``GAMMA ** #{s in STEPS : e > s}``, so the decays happen at exactly the configured epochs
(fastreid's LRScheduler hook only starts its multi-step schedule after warm-up, which moves every
step by the warm-up length). Two warm-up forms (SOLVER.WARMUP_MODE):

- ``"epoch"`` (the authors'): ``e / W`` for ``e <= W`` (``W`` = SOLVER.WARMUP_EPOCHS), constant
  within an epoch.
- ``"iteration"`` (fastreid's ``WarmupLR``): per iteration over the first ``W`` epochs (or
  SOLVER.WARMUP_ITERS iterations when ``W`` is 0), rising from SOLVER.WARMUP_FACTOR with
  SOLVER.WARMUP_METHOD ``linear``, ``constant`` or ``exp``.
"""
from __future__ import annotations

from collections.abc import Sequence

from fastreid.engine.train_loop import HookBase

WARMUP_MODES = ("epoch", "iteration")
WARMUP_METHODS = ("linear", "constant", "exp")
SCHEDULES = ("MultiStepLR",)


def decay_factor(epoch: int, steps: Sequence[int], gamma: float) -> float:
    """``gamma ** (number of steps s with epoch > s)`` for the 1-based ``epoch``."""
    return gamma ** sum(1 for s in steps if epoch > s)


def iteration_warmup_factor(progress: float, method: str, factor: float) -> float:
    """fastreid's warm-up factor at ``progress`` = iterations done / warm-up iterations
    (1 from ``progress >= 1`` on): linear ``factor + (1 - factor)·progress``, ``constant``
    ``factor``, ``exp`` ``factor ** (1 - progress)``."""
    if progress >= 1:
        return 1.0
    if method == "linear":
        return factor * (1 - progress) + progress
    if method == "constant":
        return factor
    if method == "exp":
        return factor ** (1 - progress)
    raise ValueError(f"unknown warm-up method {method!r}; known: {', '.join(WARMUP_METHODS)}")


def lr_factor(epoch: int, *, steps: Sequence[int], gamma: float, warmup_epochs: int = 0,
              mode: str = "epoch", warmup_iters: int = 0, method: str = "linear",
              warmup_factor: float = 0.1, iteration: int = 0,
              iters_per_epoch: int = 1, iters_before: int | None = None) -> float:
    """Multiplier of every group's base LR in 1-based epoch ``epoch``.

    Args:
        epoch: 1-based epoch (``e`` in the authors' ``adjust_learning_rate``).
        steps, gamma: multi-step decays: ``gamma`` once for every step ``s`` with ``epoch > s``.
        warmup_epochs: ``W``; in ``"epoch"`` mode the factor is ``min(1, epoch / W)``.
        mode: ``"epoch"`` or ``"iteration"`` (module docstring).
        warmup_iters, method, warmup_factor: the ``"iteration"`` form when ``W`` is 0:
            fastreid's warm-up over ``warmup_iters`` global iterations.
        iteration: iterations already run in this epoch (``"iteration"`` mode only).
        iters_per_epoch: iterations of this epoch (``"iteration"`` mode with ``W > 0``: the
            warm-up progress is ``(epoch - 1 + iteration / iters_per_epoch) / W``, which is
            fastreid's ``global iteration / (W · epoch length)`` when epochs have one length).
        iters_before: global iterations before this epoch (``"iteration"`` mode with ``W = 0``).
    """
    decay = decay_factor(epoch, steps, gamma)
    if mode == "epoch":
        return decay * (min(1.0, epoch / warmup_epochs) if warmup_epochs > 0 else 1.0)
    if mode != "iteration":
        raise ValueError(f"unknown warm-up mode {mode!r}; known: {', '.join(WARMUP_MODES)}")
    if warmup_epochs > 0:
        progress = (epoch - 1 + iteration / iters_per_epoch) / warmup_epochs
    elif warmup_iters > 0:
        progress = ((iters_before or 0) + iteration) / warmup_iters
    else:
        progress = 1.0
    return decay * iteration_warmup_factor(progress, method, warmup_factor)


# the keys the epoch schedule reads, checked by the config schema (cift.config)
SCHEDULE_KEYS = ("SOLVER.SCHED", "SOLVER.WARMUP_MODE", "SOLVER.WARMUP_METHOD",
                 "SOLVER.WARMUP_EPOCHS", "SOLVER.WARMUP_ITERS", "SOLVER.WARMUP_FACTOR",
                 "SOLVER.DELAY_EPOCHS", "SOLVER.GAMMA", "SOLVER.STEPS")


def check_schedule(cfg) -> None:
    """The schedule keys against the config schema; CiftInputError naming the key otherwise
    (a config read by `cift.config.load_config` has passed this already)."""
    from ..config import check_keys

    check_keys(cfg, SCHEDULE_KEYS)


class EpochLRScheduler:
    """Sets every optimizer group's LR to its base LR (its LR when this object is built)
    times :func:`lr_factor`; stateless otherwise (nothing to checkpoint)."""

    def __init__(self, cfg, optimizer) -> None:
        check_schedule(cfg)
        s = cfg.SOLVER
        self.optimizer = optimizer
        self.base_lrs = [group.setdefault("initial_lr", group["lr"])
                         for group in optimizer.param_groups]
        self.kwargs = dict(steps=tuple(s.STEPS), gamma=s.GAMMA, warmup_epochs=s.WARMUP_EPOCHS,
                           mode=s.WARMUP_MODE, warmup_iters=s.WARMUP_ITERS,
                           method=s.WARMUP_METHOD, warmup_factor=s.WARMUP_FACTOR)

    def factor(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1,
               iters_before: int = 0) -> float:
        """:func:`lr_factor` of 0-based ``epoch`` (the trainer's count)."""
        return lr_factor(epoch + 1, iteration=iteration, iters_per_epoch=iters_per_epoch,
                         iters_before=iters_before, **self.kwargs)

    def set_lr(self, *args, **kwargs) -> float:
        """Apply :meth:`factor` to every group; returns the factor."""
        factor = self.factor(*args, **kwargs)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        return factor


class EpochLRHook(HookBase):
    """Before every iteration, sets the LR of the trainer's epoch and position in it (the
    trainer's ``epoch``, ``iter``, ``epoch_start_iter`` and ``epoch_lengths``); after it, stores
    the backbone's LR as the ``lr`` scalar (the base LR's group, as fastreid logs it)."""

    def __init__(self, scheduler: EpochLRScheduler, base_lr: float) -> None:
        self.scheduler = scheduler
        lrs = scheduler.base_lrs
        self.logged_group = next((i for i, lr in enumerate(lrs) if lr == base_lr), 0)

    def before_step(self) -> None:
        t = self.trainer
        self.scheduler.set_lr(t.epoch, t.iter - t.epoch_start_iter, t.epoch_lengths[t.epoch],
                              t.epoch_start_iter)

    def after_step(self) -> None:
        lr = self.scheduler.optimizer.param_groups[self.logged_group]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)

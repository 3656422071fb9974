"""The LR schedule is a function of the epoch: the authors' `adjust_learning_rate` for every
epoch of the shipped configs, and the same LR read from the optimizer of a real training run."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastreid.engine import hooks
from fastreid.engine.train_loop import HookBase

from cift.config import load_config
from cift.engine.schedule import EpochLRScheduler, check_schedule, lr_factor
from cift.errors import CiftInputError
from helpers import ROOT
from helpers.runs import args

CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yml")
                 if p.name != "Base-CIFT.yml")
PAPER_CONFIGS = [c for c in CONFIGS if not c.startswith("configs/Demo/")]
DEMO_CONFIGS = [c for c in CONFIGS if c.startswith("configs/Demo/")]


def authors_lr(base: float, epoch: int, warmup: int, steps: list[int], gamma: float) -> float:
    """The authors' adjust_learning_rate (utils.py), epoch 1-based, as a plain loop."""
    lr = base
    if epoch <= warmup:
        lr = lr * epoch / warmup
    for step in steps:
        if epoch > step:
            lr = lr * gamma
    return lr


def fastreid_warmup_lr(base: float, iteration: int, warmup_iters: int, factor: float,
                       epoch: int, steps: list[int], gamma: float) -> float:
    """fastreid's linear WarmupLR at a global iteration, decays at exactly the given epochs."""
    warm = 1.0
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        warm = factor * (1 - alpha) + alpha
    return base * warm * gamma ** sum(epoch > s for s in steps)


def factor_kwargs(cfg) -> dict:
    s = cfg.SOLVER
    return dict(steps=list(s.STEPS), gamma=s.GAMMA, warmup_epochs=s.WARMUP_EPOCHS,
                mode=s.WARMUP_MODE, warmup_iters=s.WARMUP_ITERS, method=s.WARMUP_METHOD,
                warmup_factor=s.WARMUP_FACTOR)


@pytest.mark.parametrize("config", PAPER_CONFIGS)
def test_every_epoch_of_the_shipped_configs_is_the_authors_lr(config: str) -> None:
    cfg = load_config(str(ROOT / config))
    s = cfg.SOLVER
    assert s.WARMUP_MODE == "epoch", "the paper recipe warms up per epoch"
    for epoch in range(1, s.MAX_EPOCH + 1):
        expected = authors_lr(s.BASE_LR, epoch, s.WARMUP_EPOCHS, list(s.STEPS), s.GAMMA)
        for iteration in (0, 7, 300):  # constant within the epoch
            got = s.BASE_LR * lr_factor(epoch, iteration=iteration, iters_per_epoch=301,
                                        **factor_kwargs(cfg))
            assert got == pytest.approx(expected, rel=1e-12, abs=0), (epoch, iteration)


@pytest.mark.parametrize("config", DEMO_CONFIGS)
def test_demo_configs_warm_up_per_iteration_then_decay_at_their_epochs(config: str) -> None:
    """The demos keep their own short schedule (their config says why): fastreid's
    per-iteration warm-up from WARMUP_FACTOR, then the multi-step decays at exactly STEPS."""
    cfg = load_config(str(ROOT / config))
    s = cfg.SOLVER
    assert s.WARMUP_MODE == "iteration"
    first = lr_factor(1, iteration=0, iters_per_epoch=301, **factor_kwargs(cfg))
    assert first == pytest.approx(s.WARMUP_FACTOR)
    for epoch in range(s.WARMUP_EPOCHS + 1, s.MAX_EPOCH + 1):
        expected = authors_lr(s.BASE_LR, epoch, s.WARMUP_EPOCHS, list(s.STEPS), s.GAMMA)
        got = s.BASE_LR * lr_factor(epoch, iteration=0, iters_per_epoch=301,
                                    **factor_kwargs(cfg))
        assert got == pytest.approx(expected, rel=1e-12, abs=0), epoch


def test_base_recipe_table() -> None:
    """Base-CIFT (SYSU-MM01 CIFT): epochs 1-10 at e/10, 11-60 at 1, 61-100 at 0.1, 101-120 at
    0.01 (x BASE_LR 0.01): 50 epochs at 0.01 and 20 at 1e-4, as the authors train."""
    cfg = load_config(str(ROOT / "configs/SYSU-MM01/cift_R50.yml"))
    factors = [lr_factor(e, **factor_kwargs(cfg)) for e in range(1, 121)]
    assert factors[:10] == pytest.approx([e / 10 for e in range(1, 11)])
    assert factors[10:60] == pytest.approx([1.0] * 50)
    assert factors[60:100] == pytest.approx([0.1] * 40)
    assert factors[100:] == pytest.approx([0.01] * 20)


def test_heads_get_the_factor_times_their_own_lr() -> None:
    cfg = load_config(str(ROOT / "configs/SYSU-MM01/cift_R50.yml"))
    w, h = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [w], "lr": 0.01}, {"params": [h], "lr": 0.1}], lr=0.01)
    scheduler = EpochLRScheduler(cfg, optimizer)
    for epoch in range(120):
        scheduler.set_lr(epoch)
        base = authors_lr(0.01, epoch + 1, 10, [60, 100], 0.1)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(base, rel=1e-12)
        assert optimizer.param_groups[1]["lr"] == pytest.approx(10 * base, rel=1e-12)


def test_iteration_mode_is_fastreids_warmup_with_exact_steps() -> None:
    kwargs = dict(steps=[4, 6], gamma=0.1, warmup_epochs=3, mode="iteration", method="linear",
                  warmup_factor=0.1)
    n = 5
    for epoch in range(1, 9):
        for j in range(n):
            i = (epoch - 1) * n + j
            expected = fastreid_warmup_lr(1.0, i, 3 * n, 0.1, epoch, [4, 6], 0.1)
            got = lr_factor(epoch, iteration=j, iters_per_epoch=n, **kwargs)
            assert got == pytest.approx(expected, rel=1e-12), (epoch, j)
    # warm-up in iterations (SOLVER.WARMUP_ITERS) when WARMUP_EPOCHS is 0
    kwargs.update(warmup_epochs=0, warmup_iters=7)
    for i in range(12):
        epoch, j = i // n + 1, i % n
        expected = fastreid_warmup_lr(1.0, i, 7, 0.1, epoch, [4, 6], 0.1)
        got = lr_factor(epoch, iteration=j, iters_before=(epoch - 1) * n, **kwargs)
        assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("SOLVER.SCHED", "CosineAnnealingLR", "SOLVER.SCHED 'CosineAnnealingLR'.*MultiStepLR"),
    ("SOLVER.WARMUP_MODE", "batch", "SOLVER.WARMUP_MODE 'batch'.*'epoch', 'iteration'"),
    ("SOLVER.DELAY_EPOCHS", "3", "SOLVER.DELAY_EPOCHS 3"),
])
def test_unsupported_schedules_are_refused(key: str, value: str, match: str) -> None:
    config = str(ROOT / "configs/SYSU-MM01/cift_R50.yml")
    with pytest.raises(CiftInputError, match=match):  # when the config is loaded
        load_config(config, [key, value])
    cfg = load_config(config)
    cfg.defrost()
    cfg.merge_from_list([key, value])  # a config not read by load_config: the trainer's check
    with pytest.raises(CiftInputError, match=match):
        check_schedule(cfg)


class RecordLR(HookBase):
    """(epoch, iteration, backbone LR, heads LR) before every step, after the LR hook ran."""

    def __init__(self, backbone: int, heads: int) -> None:
        self.groups, self.rows = (backbone, heads), []

    def before_step(self) -> None:
        g = self.trainer.optimizer.param_groups
        self.rows.append((self.trainer.epoch, self.trainer.iter,
                          g[self.groups[0]]["lr"], g[self.groups[1]]["lr"]))

    def after_step(self) -> None:
        assert self.trainer.storage.history("lr").latest() == self.rows[-1][2]


def train_and_record(out: Path, *opts: str):
    from cift.engine import CIFTTrainer
    from cift.engine.setup import setup

    cfg = setup(args("SOLVER.MAX_EPOCH", "7", "SOLVER.WARMUP_EPOCHS", "3", "SOLVER.STEPS",
                     "[4, 6]", "SOLVER.CHECKPOINT_PERIOD", "100", "TEST.EVAL_PERIOD", "100",
                     *opts, out=out))
    trainer = CIFTTrainer(cfg)
    trainer._hooks = [h for h in trainer._hooks if not isinstance(h, hooks.EvalHook)]
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    groups = trainer.optimizer.param_groups
    assert len(groups) == len(names)  # fastreid: one group per parameter
    backbone = names.index(next(n for n in names if n.startswith("backbone.")))
    heads = names.index(next(n for n in names if n.startswith("heads.")))
    recorder = RecordLR(backbone, heads)
    trainer.register_hooks([recorder])
    trainer.train()
    return trainer, recorder.rows


def test_trainer_lr_per_epoch_is_the_authors_formula(env, tmp_path) -> None:
    """A real 7-epoch run (warm-up 3 epochs, steps after epochs 4 and 6): the LR read from the
    optimizer's backbone and heads groups at every iteration equals the formula."""
    trainer, rows = train_and_record(tmp_path / "epoch", "SOLVER.ITERS_PER_EPOCH", "2",
                                     "SOLVER.WARMUP_MODE", "epoch")
    assert [r[0] for r in rows] == [e for e in range(7) for _ in range(2)]
    for epoch, _, backbone, heads in rows:
        expected = authors_lr(0.01, epoch + 1, 3, [4, 6], 0.1)
        assert backbone == pytest.approx(expected, rel=1e-12)
        assert heads == pytest.approx(10 * expected, rel=1e-12)
    seen = sorted({round(r[2], 12) for r in rows})
    assert seen == [round(v, 12) for v in (1e-4, 1e-3, 0.01 / 3, 0.02 / 3, 0.01)]


def test_trainer_lr_per_iteration_mode(env, tmp_path) -> None:
    trainer, rows = train_and_record(tmp_path / "iter", "SOLVER.ITERS_PER_EPOCH", "2",
                                     "SOLVER.WARMUP_MODE", "iteration")
    for epoch, iteration, backbone, heads in rows:
        expected = fastreid_warmup_lr(0.01, iteration, 6, 0.1, epoch + 1, [4, 6], 0.1)
        assert backbone == pytest.approx(expected, rel=1e-12)
        assert heads == pytest.approx(10 * expected, rel=1e-12)


def test_trainer_runs_each_sampler_epoch_with_its_own_length(env, tmp_path) -> None:
    """SOLVER.ITERS_PER_EPOCH 0: epoch e runs the sampler's draw of e (lengths differ), the
    iteration count is their sum, and the LR of an epoch stays the formula's."""
    trainer, rows = train_and_record(tmp_path / "draw", "SOLVER.ITERS_PER_EPOCH", "0",
                                     "SOLVER.MAX_EPOCH", "3", "SOLVER.STEPS", "[]",
                                     "DATALOADER.NUM_INSTANCE", "8",
                                     "SOLVER.IMS_PER_BATCH", "32", "SOLVER.WARMUP_MODE", "epoch")
    lengths = [trainer.sampler.batches_in_epoch(e) for e in range(3)]
    assert trainer.epoch_lengths == lengths and trainer.max_iter == sum(lengths)
    assert [r[0] for r in rows] == [e for e in range(3) for _ in range(lengths[e])]
    assert [r[1] for r in rows] == list(range(sum(lengths)))
    for epoch, _, backbone, _ in rows:
        assert backbone == pytest.approx(authors_lr(0.01, epoch + 1, 3, [], 0.1), rel=1e-12)

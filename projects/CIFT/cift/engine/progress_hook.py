"""What a training run shows while it runs: a header (what is trained, for how many
iterations, where the log goes), an estimate of the training time once the first iterations
are timed, and a progress display with its ETA (`cift.progress`: a bar on a terminal, a line
every half minute elsewhere), closed with the training time before the last evaluation."""
from __future__ import annotations

import logging
import os
import time

from fastreid.engine.train_loop import HookBase
from fastreid.utils import comm

from ..progress import format_minutes, progress

__all__ = ["TIMED_ITERATIONS", "TrainingProgress", "describe_run"]

logger = logging.getLogger(__name__)

# Iterations timed for the estimate, after the first (which starts the loader's workers).
TIMED_ITERATIONS = 5


def _backbone(cfg) -> str:
    depth = str(cfg.MODEL.BACKBONE.DEPTH).rstrip("x")
    weights = "ImageNet weights" if cfg.MODEL.BACKBONE.PRETRAIN else "from scratch"
    return f"ResNet-{depth} {weights}" if depth.isdigit() else f"{cfg.MODEL.BACKBONE.NAME}"


def _evaluation(cfg, epochs: int) -> str:
    tests = ", ".join(cfg.DATASETS.TESTS)
    period = cfg.TEST.EVAL_PERIOD
    if period <= 0 or period >= epochs:
        return f"then evaluated on {tests}"
    return f"evaluated on {tests} every {period} epochs and at the end"


def describe_run(cfg, iterations: int, epochs: int, start_iter: int = 0) -> str:
    """The header of a training run: model, data, batch, schedule, device and where its log
    and results go (several lines)."""
    h, w = cfg.INPUT.SIZE_TRAIN
    k = cfg.DATALOADER.NUM_INSTANCE
    p = cfg.SOLVER.IMS_PER_BATCH // (2 * k)
    schedule = f"{iterations} iterations ({epochs} epochs)"
    if start_iter:
        schedule += f", resumed at iteration {start_iter}"
    out = cfg.OUTPUT_DIR or "(no OUTPUT_DIR: nothing written)"
    return "\n".join([
        f"training {cfg.MODEL.META_ARCHITECTURE} on {', '.join(cfg.DATASETS.NAMES)}, seed "
        f"{cfg.SEED}",
        f"  {_backbone(cfg)}, {h}x{w} images, batches of {p} identities x ({k} visible + "
        f"{k} infrared)",
        f"  {schedule} on {cfg.MODEL.DEVICE}, {_evaluation(cfg, epochs)}",
        f"  log (environment, config, model, losses): {os.path.join(out, 'log.txt')}",
    ])


class TrainingProgress(HookBase):
    """Prints (main process) :func:`describe_run` before training, an estimate of the training
    time after `TIMED_ITERATIONS` timed iterations, a progress display over the iterations, and
    the training time after the last iteration, before the evaluation that follows it."""

    def before_train(self) -> None:
        t = self.trainer
        self.display = None
        if not comm.is_main_process():
            return
        logger.info(describe_run(t.cfg, t.max_iter, t.max_epoch, t.start_iter))
        self.start = time.perf_counter()
        self.timed_from = None
        self.display = progress(desc="training", total=t.max_iter, unit="it", leave=True,
                                initial=t.start_iter)

    def after_step(self) -> None:
        if self.display is None:
            return
        t = self.trainer
        self.display.update()
        done = t.iter + 1 - t.start_iter
        if done == 1:
            self.timed_from = time.perf_counter()
        elif done == 1 + TIMED_ITERATIONS and t.iter + 1 < t.max_iter:
            per_iter = (time.perf_counter() - self.timed_from) / TIMED_ITERATIONS
            self._say(f"about {format_minutes(per_iter * (t.max_iter - t.iter - 1))} of "
                      f"training left ({per_iter:.2f} s per iteration over "
                      f"{TIMED_ITERATIONS} iterations)")
        if t.iter + 1 == t.max_iter:
            self._close()

    def after_train(self) -> None:
        if self.display is not None:  # training stopped early (an exception)
            self.display.close()
            self.display = None

    def _close(self) -> None:
        self.display.close()
        self.display = None
        t = self.trainer
        done = t.iter + 1 - t.start_iter
        seconds = time.perf_counter() - self.start
        logger.info(f"trained {done} iterations in {format_minutes(seconds)} "
                    f"({seconds / done:.2f} s per iteration)")

    def _say(self, message: str) -> None:
        """Log `message` without breaking a terminal bar (cleared, then redrawn below it)."""
        clear = getattr(self.display, "clear", None)
        if clear is not None:
            clear()
        logger.info(message)
        refresh = getattr(self.display, "refresh", None)
        if refresh is not None:
            refresh()

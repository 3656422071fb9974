"""Evaluation scalars that reach metrics.json and tensorboard, under one tag scheme.

fastreid's trainer loses them: an epoch's evaluation puts its scalars at the epoch's last
iteration, which `PeriodicWriter` has already written (its writers then skip that iteration),
and the evaluation after the last epoch runs after the writers' final write. Here:

- :class:`VIEvalHook` stores every evaluation as :func:`eval_scalars` tags, the same for
  VIBaseline and CIFT runs, so their curves overlay in tensorboard;
- :class:`EpochEndWriter` writes an epoch's last iteration once, after the epoch's evaluation
  hooks, and writes again before closing at the end of training;
- :class:`ScalarJSONWriter` / :class:`ScalarTensorboardWriter` write every value the storage
  holds once, at the iteration it was put at: each iteration's raw losses (not fastreid's
  20-iteration medians, whose window a resumed run would restart), and scalars put at an
  iteration already written still land.

:func:`with_cift_hooks` puts these hooks (and the epoch LR schedule's) in the places of
fastreid's in the list DefaultTrainer.build_hooks makes, the writer before the checkpointer:
every record of an epoch is on disk before a checkpoint names that epoch, so a run killed at
any moment and resumed writes each iteration exactly once, as the uninterrupted run does.
"""
from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

import torch
from fastreid.engine import hooks
from fastreid.utils import comm
from fastreid.utils.events import EventWriter, get_event_storage

from ..atomic import append_text
from ..evaluation.report import protocol_rows
from ..evaluation.vi_evaluator import BNNECK_ONLY, TRANSFERRED
from ..fastreid_private import (
    eval_hook_parts,
    pending_histograms,
    pending_images,
    periodic_writer_writers,
)
from .schedule import EpochLRHook, EpochLRScheduler

__all__ = ["EpochEndWriter", "ScalarJSONWriter", "ScalarTensorboardWriter", "VIEvalHook",
           "eval_scalars", "with_cift_hooks"]

# Tag groups: each model's own ranking (a baseline's features, CIFT's transferred ones), and
# CIFT's BNNeck features without the transfer (CIFT†).
EVAL_GROUP, NO_TRANSFER_GROUP = "eval", "eval_no_transfer"


def eval_scalars(results: dict, test_sets: Sequence[str]) -> OrderedDict[str, float]:
    """Scalars of one evaluation (:meth:`CIFTTrainer.test`'s results: one test set's metrics,
    or a dict keyed by test set when there are several).

    Returns {"eval/<test set>/<setting>/<metric>": value} for the model's ranking,
    "eval_no_transfer/..." for CIFT†, and fastreid's checkpointer key "metric" (one test set)
    or "<test set>/metric" (several).
    """
    by_set = {test_sets[0]: results} if len(test_sets) == 1 else results
    scalars: OrderedDict[str, float] = OrderedDict()
    for name in test_sets:
        metrics_of_set = by_set.get(name) or {}
        if "metric" in metrics_of_set:
            scalars["metric" if len(test_sets) == 1 else f"{name}/metric"] = float(
                metrics_of_set["metric"])
        for label, metrics in protocol_rows(metrics_of_set):
            method, _, setting = label.rpartition(" ")
            group = {"": EVAL_GROUP, TRANSFERRED: EVAL_GROUP,
                     BNNECK_ONLY: NO_TRANSFER_GROUP}.get(method, f"{EVAL_GROUP}_{method}")
            for metric, value in metrics.items():
                scalars[f"{group}/{name}/{setting}/{metric}"] = float(value)
    return scalars


class VIEvalHook(hooks.EvalHook):
    """fastreid's EvalHook (same schedule), storing :func:`eval_scalars` of the results."""

    def __init__(self, eval_period: int, eval_function, test_sets: Sequence[str]):
        super().__init__(eval_period, eval_function)
        self.eval_function = eval_function
        self.test_sets = tuple(test_sets)

    def _do_eval(self) -> None:  # what EvalHook runs at its schedule's iterations
        results = self.eval_function()
        if results:
            self.trainer.storage.put_scalars(**eval_scalars(results, self.test_sets),
                                             smoothing_hint=False)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        comm.synchronize()  # evaluation times differ between ranks

    def after_train(self) -> None:
        # fastreid's trainer moves the storage one past the last iteration here; an evaluation
        # after the last epoch belongs to its last iteration, as when after_epoch runs it
        # (the hooks after this one, topology and writers, use the same iteration)
        self.trainer.storage.iter = max(self.trainer.iter - 1, 0)
        super().after_train()


class EpochEndWriter(hooks.PeriodicWriter):
    """PeriodicWriter that leaves an epoch's last iteration to `after_epoch` (which runs after
    the evaluation hooks, so the iteration's losses and evaluation are written together), and
    writes what the final evaluation added before closing the writers."""

    def __init__(self, writers: list, period: int = 20):
        super().__init__(writers, period)
        self.writers = writers

    def after_step(self) -> None:
        t = self.trainer  # epochs have their own lengths (CIFTTrainer.epoch_lengths)
        if t.iter + 1 != t.epoch_start_iter + t.epoch_lengths[t.epoch]:
            super().after_step()

    def after_train(self) -> None:
        for writer in self.writers:
            writer.write()
        super().after_train()


def unwritten_scalars(written: dict[str, float]) -> dict[int, dict[str, float]]:
    """{iteration: {name: value}} of every value the storage's histories hold at an iteration
    after the last one written for that name (`written`: {name: last iteration written}, which
    this updates) and not after the storage's iteration (a step that failed put some values
    before failing; its loop then sets the storage back to the last iteration done). Raw
    values, one per name and iteration (the latest when one was put twice)."""
    storage = get_event_storage()
    fresh: dict[int, dict[str, float]] = defaultdict(dict)
    for name, history in storage.histories().items():
        last = written.get(name, -1)
        for value, iteration in reversed(history.values()):
            if iteration <= last:
                break
            if iteration <= storage.iter:
                fresh[int(iteration)].setdefault(name, value)
                written[name] = max(written.get(name, -1), iteration)
    return dict(sorted(fresh.items()))


class ScalarJSONWriter(EventWriter):
    """fastreid's JSONWriter (one JSON object per line and iteration, appended to `json_file`),
    writing every iteration's raw values once (:func:`unwritten_scalars`). Each write is
    appended and made durable whole, or not at all (cift.atomic.append_text)."""

    def __init__(self, json_file: str):
        self.path = json_file
        self._written: dict[str, float] = {}

    def write(self) -> None:
        lines = [json.dumps({**scalars, "iteration": iteration}, sort_keys=True) + "\n"
                 for iteration, scalars in unwritten_scalars(self._written).items()]
        if lines:
            append_text(self.path, "".join(lines))

    def close(self) -> None:
        pass


class ScalarTensorboardWriter(EventWriter):
    """fastreid's TensorboardXWriter, writing every iteration's raw values once (as
    :class:`ScalarJSONWriter`), and the storage's images and histograms (clearing them, as
    fastreid's writer does). Its event file is opened at the first write, purging from the
    first iteration written on what an earlier, killed run wrote there (tensorboard's
    purge_step)."""

    def __init__(self, log_dir: str, **kwargs):
        self.log_dir, self.kwargs = log_dir, kwargs
        self.writer = None
        self._written: dict[str, float] = {}

    def write(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        fresh = unwritten_scalars(self._written)
        if self.writer is None:
            self.writer = SummaryWriter(self.log_dir, purge_step=min(fresh, default=None),
                                        **self.kwargs)
        for iteration, scalars in fresh.items():
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, iteration)
        storage = get_event_storage()
        for image_name, image, step in pending_images(storage):
            self.writer.add_image(image_name, image, step)
        storage.clear_images()
        for params in pending_histograms(storage):
            self.writer.add_histogram_raw(**params)
        storage.clear_histograms()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def with_cift_hooks(hook_list: list, scheduler: EpochLRScheduler, cfg) -> list:
    """DefaultTrainer.build_hooks' `hook_list` with cift's hooks in place of fastreid's, each at
    its place: the epoch schedule's EpochLRHook for LRScheduler (whose multi-step schedule
    starts only after warm-up), VIEvalHook for EvalHook (same period and function) and
    EpochEndWriter for PeriodicWriter (same writers, every SOLVER.LOG_PERIOD iterations)."""
    def replace(hook):
        if isinstance(hook, hooks.LRScheduler):
            return EpochLRHook(scheduler, cfg.SOLVER.BASE_LR)
        if isinstance(hook, hooks.PeriodicWriter):
            return EpochEndWriter(periodic_writer_writers(hook), cfg.SOLVER.LOG_PERIOD)
        if isinstance(hook, hooks.EvalHook):
            return VIEvalHook(*eval_hook_parts(hook), cfg.DATASETS.TESTS)
        return hook

    ret = [replace(hook) for hook in hook_list]
    writer = next((h for h in ret if isinstance(h, EpochEndWriter)), None)
    checkpointer = next((h for h in ret if isinstance(h, hooks.PeriodicCheckpointer)), None)
    if writer is not None and checkpointer is not None:
        ret.remove(writer)
        ret.insert(ret.index(checkpointer), writer)  # records on disk before the checkpoint
    return ret

"""fastreid's private state, read and written only here.

cift extends fastreid's trainer, hooks, writers and process groups, which keep what cift needs in
attributes without a public accessor. Each function names the private attribute it reaches and
why cift needs it, so that a fastreid upgrade has one file to check. fastreid is imported inside
the functions: `cift.compat` imports this module before fastreid can be imported at all.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["attach_step_trainer", "data_iterator", "default_config", "eval_hook_parts",
           "last_eval_results", "pending_histograms", "pending_images", "periodic_writer_writers",
           "registered_names", "set_data_iterator", "set_launch_worker", "set_local_process_group",
           "step_trainer", "storage_is_open"]


def registered_names(registry) -> tuple[str, ...]:
    """Sorted names in a fastreid Registry: 1.4.0's is not iterable and keeps them in the
    private `_obj_map`."""
    return tuple(sorted(registry._obj_map))


def eval_hook_parts(hook) -> tuple[int, Callable]:
    """(period, evaluation function) of a fastreid EvalHook (private `_period`, `_func`), so
    that cift's evaluation hook can take the place of the one DefaultTrainer.build_hooks made."""
    return hook._period, hook._func


def periodic_writer_writers(hook) -> list:
    """The writers of a fastreid PeriodicWriter (private `_writers`), which cift's epoch-end
    writer takes over."""
    return hook._writers


def last_eval_results(trainer) -> Any:
    """The results of the last evaluation of a DefaultTrainer, which the evaluation function of
    its build_hooks keeps in the private `_last_eval_results` (None before any evaluation)."""
    return getattr(trainer, "_last_eval_results", None)


def attach_step_trainer(trainer, step_trainer) -> None:
    """Make `step_trainer` (a SimpleTrainer or AMPTrainer) run `trainer`'s steps: a
    DefaultTrainer's run_step and its model / data_loader / optimizer / grad_scaler read the
    private `_trainer`, which only DefaultTrainer.__init__ (not run by CIFTTrainer) sets."""
    trainer._trainer = step_trainer


def step_trainer(trainer):
    """The SimpleTrainer / AMPTrainer running a DefaultTrainer's steps (private `_trainer`)."""
    return trainer._trainer


def data_iterator(step):
    """The iterator a SimpleTrainer draws each step's batch from (private `_data_loader_iter`),
    for cift's own step (`cift.engine.amp.AutocastTrainer.run_step`)."""
    return step._data_loader_iter


def set_data_iterator(step, iterator) -> None:
    """The iterator a SimpleTrainer / AMPTrainer draws each step's batch from (private
    `_data_loader_iter`, which its __init__ sets once): cift starts a new one every epoch and
    sets None at an epoch's end, which ends that iterator's loader workers."""
    step._data_loader_iter = iterator


def pending_images(storage) -> list[tuple]:
    """The (name, image, step) entries an EventStorage holds for writers (private
    `_vis_data`; fastreid's tensorboard writer reads it so too)."""
    return storage._vis_data


def pending_histograms(storage) -> list[dict]:
    """The histogram entries an EventStorage holds for writers (private `_histograms`)."""
    return storage._histograms


def storage_is_open() -> bool:
    """Whether code runs inside a fastreid EventStorage (private `_CURRENT_STORAGE_STACK`):
    `get_event_storage()` asserts otherwise, and a model also runs outside training."""
    from fastreid.utils import events

    return bool(events._CURRENT_STORAGE_STACK)


def set_local_process_group(group) -> None:
    """Make `group` this process's per-machine group: fastreid's `get_local_rank` /
    `get_local_size` read the private `comm._LOCAL_PROCESS_GROUP`, which only fastreid's own
    launch worker sets."""
    from fastreid.utils import comm

    comm._LOCAL_PROCESS_GROUP = group


def default_config():
    """fastreid's default config (private `fastreid.config.defaults._C`), which `get_cfg()`
    clones: a default changed there holds for every config built afterwards."""
    from fastreid.config import defaults

    return defaults._C


def set_launch_worker(worker: Callable) -> None:
    """Make `worker` the function fastreid's `launch()` spawns (private
    `fastreid.engine.launch._distributed_worker`). The module is taken from sys.modules: the
    package's `from .launch import *` shadows the submodule with the function."""
    import fastreid.engine  # noqa: F401  imports fastreid.engine.launch

    sys.modules["fastreid.engine.launch"]._distributed_worker = worker

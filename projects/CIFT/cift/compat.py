"""Run-time adaptations of fastreid 1.4.0 to torch 2 / Python 3.11 / numpy 2 / CPU-only machines.

This is the only module that patches fastreid. Each shim is one function with a comment saying
what breaks without it; `apply()` runs them all and is called by `import cift` before anything
else touches fastreid. Every shim is idempotent and is covered by a test that fails without it.
Nothing in site-packages is edited: the shims replace module attributes at run time.

It is also the only module that touches fastreid's private state: process-group set-up (shared
by fastreid's patched launch worker and `cift.engine.launch`, which sits above this module)
and one named accessor per private attribute the engine needs (end of the module).
"""
from __future__ import annotations

import collections
import collections.abc
import logging
import sys
import types
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)

_APPLIED = False


def input_error() -> type[ValueError]:
    """`cift.errors.CiftInputError`, or ValueError when compat.py is loaded on its own (as
    tests/helpers/compat_program.py does, without the package)."""
    try:
        from .errors import CiftInputError
    except ImportError:
        return ValueError
    return CiftInputError


def provide_torch_six() -> None:
    """`fastreid.data.build` does `from torch._six import string_classes`; torch 2 removed
    `torch._six`. Provide a minimal module with the one name fastreid uses."""
    if "torch._six" in sys.modules:
        return
    six = types.ModuleType("torch._six")
    six.string_classes = (str, bytes)
    sys.modules["torch._six"] = six
    torch._six = six


def restore_collections_abc_aliases() -> None:
    """`fastreid.data.build` and `fastreid.evaluation.testing` do `from collections import
    Mapping`; Python 3.10 removed those aliases of `collections.abc`."""
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def default_device_from_hardware() -> None:
    """fastreid's default `MODEL.DEVICE` is "cuda", so every config fails on a machine without
    a GPU; default to "cpu" there (an explicit `MODEL.DEVICE` in a config still wins)."""
    from fastreid.config import defaults

    if not torch.cuda.is_available():
        defaults._C.MODEL.DEVICE = "cpu"


def cpu_safe_dataloader() -> None:
    """`DataLoaderX` creates a CUDA stream in its constructor and prefetches to the GPU, so
    fastreid's loaders crash without CUDA. Use it on GPU machines, a plain DataLoader otherwise."""
    from fastreid.data import build, data_utils

    original = getattr(data_utils.DataLoaderX, "_cift_original", data_utils.DataLoaderX)

    def DataLoaderX(local_rank: int, **kwargs: Any) -> torch.utils.data.DataLoader:  # noqa: N802
        if torch.cuda.is_available():
            return original(local_rank, **kwargs)
        return torch.utils.data.DataLoader(**{**kwargs, "pin_memory": False})

    DataLoaderX._cift_original = original
    data_utils.DataLoaderX = DataLoaderX
    build.DataLoaderX = DataLoaderX


def skip_cython_build() -> None:
    """`ReidEvaluator` runs `make` inside site-packages to build its Cython ranker and calls
    `sys.exit(1)` when that fails (no write access, no Cython). fastreid already falls back to
    its Python ranker when the extension is absent, so skip the build instead of exiting."""
    from fastreid.evaluation import reid_evaluation

    def compile_helper() -> None:
        logger.info("fastreid's Cython ranker is not built; using its Python ranker")

    reid_evaluation.compile_helper = compile_helper


def cpu_safe_rerank() -> None:
    """`compute_jaccard_distance` (TEST.RERANK) moves features to CUDA for every faiss search
    option but the CPU one; pick the CPU option when there is no GPU."""
    from fastreid.utils import compute_dist

    current = compute_dist.compute_jaccard_distance
    original: Callable = getattr(current, "_cift_original", current)

    def compute_jaccard_distance(features, k1=20, k2=6, search_option=0, fp16=False):
        if not torch.cuda.is_available() or faiss_gpu_count() == 0:
            search_option = 3
        return original(features, k1=k1, k2=k2, search_option=search_option, fp16=fp16)

    compute_jaccard_distance._cift_original = original
    compute_dist.compute_jaccard_distance = compute_jaccard_distance


def faiss_gpu_count() -> int:
    """Number of GPUs faiss can use (0 for the faiss-cpu wheel)."""
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def distributed_data_parallel(module: torch.nn.Module, device_ids=None,
                              **kwargs: Any) -> DistributedDataParallel:
    """`DistributedDataParallel(module, device_ids, **kwargs)`, with `device_ids` dropped for a
    module on the CPU, for which torch requires `device_ids=None`. DefaultTrainer (through
    `cpu_safe_ddp`) and CIFTTrainer both wrap their models with it."""
    on_cpu = next(module.parameters()).device.type == "cpu"
    return DistributedDataParallel(module, device_ids=None if on_cpu else device_ids, **kwargs)


def cpu_safe_ddp() -> None:
    """DefaultTrainer wraps the model as `DistributedDataParallel(model, device_ids=[rank])`,
    which torch refuses for a CPU model; wrap it with `distributed_data_parallel` instead."""
    from fastreid.engine import defaults

    defaults.DistributedDataParallel = distributed_data_parallel


# Process groups: fastreid's launch worker (patched below) and cift.engine.launch's workers
# join them through these functions, the only place that writes fastreid's per-machine group.

# Process-group timeout (DIST_TIMEOUT_S 0): a few minutes on the CPU, torch's 30 minutes (as
# fastreid gets) with NCCL.
DEFAULT_DIST_TIMEOUT_S = {"gloo": 300.0, "nccl": 1800.0}


def dist_backend() -> str:
    """NCCL (one GPU per process) when CUDA is there, gloo on the CPU otherwise."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def dist_timeout(seconds: float = 0, backend_name: str | None = None) -> timedelta:
    """The process-group timeout: `seconds` (DIST_TIMEOUT_S), or the backend's default if 0."""
    if seconds < 0:
        raise input_error()(f"DIST_TIMEOUT_S {seconds!r}: expected seconds >= 0 (0 = default)")
    return timedelta(seconds=seconds or DEFAULT_DIST_TIMEOUT_S[backend_name or dist_backend()])


def set_local_process_group(world_size: int, local_size: int, rank: int,
                            timeout: timedelta) -> None:
    """Create every machine's group of `local_size` consecutive ranks (each rank must take
    part) and store this rank's in `comm._LOCAL_PROCESS_GROUP`: fastreid's `get_local_rank` /
    `get_local_size` read that private global, which only its own launch worker sets."""
    from fastreid.utils import comm

    for first in range(0, world_size, local_size):
        group = dist.new_group(list(range(first, min(first + local_size, world_size))),
                               timeout=timeout)
        if first <= rank < first + local_size:
            comm._LOCAL_PROCESS_GROUP = group


def join_process_group(init_method: str, local_rank: int, local_size: int, timeout: timedelta,
                       world_size: int | None = None, rank: int | None = None) -> None:
    """Join the job's process group (`dist_backend()`, GPU `local_rank` with CUDA) and set up
    fastreid's per-machine group of `local_size` processes. `world_size` / `rank` None: read
    from the environment (`init_method` "env://", as torchrun sets it)."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    given = {} if world_size is None else {"world_size": world_size, "rank": rank}
    dist.init_process_group(backend=dist_backend(), init_method=init_method, timeout=timeout,
                            **given)
    set_local_process_group(dist.get_world_size(), local_size, dist.get_rank(), timeout)


def join_spawned_group(local_rank: int, world_size: int, num_gpus_per_machine: int,
                       machine_rank: int, dist_url: str, timeout_s: float = 0) -> timedelta:
    """What a process spawned by a launcher does first: check that it has a GPU (with CUDA),
    join the group at `dist_url` as rank `machine_rank * num_gpus_per_machine + local_rank`
    with a `timeout_s` timeout (0: DEFAULT_DIST_TIMEOUT_S); returns that timeout."""
    if torch.cuda.is_available() and num_gpus_per_machine > torch.cuda.device_count():
        raise input_error()(f"--num-gpus {num_gpus_per_machine}: only "
                            f"{torch.cuda.device_count()} GPUs visible")
    timeout = dist_timeout(timeout_s)
    join_process_group(dist_url, local_rank, num_gpus_per_machine, timeout,
                       world_size=world_size,
                       rank=machine_rank * num_gpus_per_machine + local_rank)
    return timeout


def _distributed_worker(local_rank, main_func, world_size, num_gpus_per_machine, machine_rank,
                        dist_url, args, timeout_s: float = 0):
    """fastreid's launch worker on `join_spawned_group` (gloo on the CPU, a process-group
    timeout). Module level, so that `mp.spawn` can pickle it. (train_net.py spawns
    `cift.engine.launch.spawned_worker`, which also names a rank that goes silent.)"""
    from fastreid.utils import comm

    join_spawned_group(local_rank, world_size, num_gpus_per_machine, machine_rank, dist_url,
                       timeout_s)
    comm.synchronize()
    main_func(*args)


def cpu_safe_launch() -> None:
    """fastreid's `launch()` workers assert CUDA and always use NCCL; use `_distributed_worker`
    above instead. `fastreid.engine.launch` is the function (`from .launch import *` shadows
    the submodule), so the module is taken from sys.modules."""
    import fastreid.engine  # noqa: F401  imports fastreid.engine.launch

    sys.modules["fastreid.engine.launch"]._distributed_worker = _distributed_worker


def plain_optimizer_params() -> None:
    """`build_optimizer` packs parameters into fastreid's ContiguousParams buffers, whose
    gradients are views that torch 2's `zero_grad()` (set_to_none=True by default) throws
    away: the optimizer then sees no gradients and the model never trains. Build optimizers
    over the parameters themselves (the buffers were only a speed-up)."""
    from fastreid import solver
    from fastreid.engine import defaults
    from fastreid.solver import build

    original = getattr(build.build_optimizer, "_cift_original", build.build_optimizer)

    def build_optimizer(cfg, model, contiguous: bool = False):
        return original(cfg, model, contiguous=False)

    build_optimizer._cift_original = original
    for module in (build, solver, defaults):
        module.build_optimizer = build_optimizer


def metric_printer_tolerates_repeated_writes() -> None:
    """`CommonMetricPrinter.write` divides by the iterations since its last write to estimate
    the ETA before the iteration timer has history (first 3 iterations); the end-of-epoch and
    end-of-training writes at the same iteration then raise ZeroDivisionError in short runs.
    Skip a write that repeats the iteration already printed in that case."""
    from fastreid.utils import events

    printer = events.CommonMetricPrinter
    original = getattr(printer.write, "_cift_original", printer.write)

    def write(self) -> None:
        last = getattr(self, "_last_write", None)
        if last is not None and last[0] == events.get_event_storage().iter:
            return
        original(self)

    write._cift_original = original
    printer.write = write


CROSS_MODALITY_SAMPLER = "CrossModalityIdentitySampler"


def check_fastreid_train_loader(cfg) -> None:
    """Raise CiftInputError when `cfg` asks fastreid's own training loader for cift's
    visible-infrared data: the cross-modality sampler, or a data set with a `config_kwargs`
    hook (cift's, whose options and per-image modality that loader cannot pass on)."""
    from fastreid.data.datasets import DATASET_REGISTRY

    ours = [name for name in cfg.DATASETS.NAMES
            if name in registered_names(DATASET_REGISTRY)
            and hasattr(DATASET_REGISTRY.get(name), "config_kwargs")]
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if sampler == CROSS_MODALITY_SAMPLER or ours:
        what = (f"DATALOADER.SAMPLER_TRAIN {sampler!r}" if sampler == CROSS_MODALITY_SAMPLER
                else f"DATASETS.NAMES {tuple(ours)}")
        raise input_error()(f"{what}: fastreid's build_reid_train_loader(cfg) (DefaultTrainer) "
                            "cannot build cift's visible-infrared training data; train with "
                            "cift.engine.CIFTTrainer or cift.data.build_vi_train_loader(cfg)")


def refuse_vi_data_in_fastreid_train_loader() -> None:
    """fastreid's config-driven `build_reid_train_loader(cfg)` (what `DefaultTrainer` calls)
    knows only its own samplers and builds data sets without the config, so with cift's
    sampler it fails with "Unknown training sampler", and with cift's data sets it would
    train on images without their modality and with default data set options. Refuse such a
    call in one line naming CIFTTrainer; a call with an explicit `train_set` (cift's own
    loader) passes unchanged."""
    import fastreid.data
    import fastreid.engine.defaults
    from fastreid.data import build

    original = getattr(build.build_reid_train_loader, "_cift_original",
                       build.build_reid_train_loader)

    def build_reid_train_loader(*args: Any, **kwargs: Any):
        cfg = args[0] if args and hasattr(args[0], "DATALOADER") else kwargs.get("cfg")
        if cfg is not None and kwargs.get("train_set") is None:
            check_fastreid_train_loader(cfg)
        return original(*args, **kwargs)

    build_reid_train_loader._cift_original = original
    for module in (build, fastreid.data, fastreid.engine.defaults):
        module.build_reid_train_loader = build_reid_train_loader


# fastreid's private state, read and written only here. The engine extends fastreid's trainer,
# hooks and writers, which keep what cift needs in attributes without a public accessor; each
# function names the attribute it reaches and why cift needs it.


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


# Order matters: the first two must run before `fastreid.data` can be imported at all.
SHIMS: tuple[Callable[[], None], ...] = (
    provide_torch_six,
    restore_collections_abc_aliases,
    default_device_from_hardware,
    cpu_safe_dataloader,
    skip_cython_build,
    cpu_safe_rerank,
    cpu_safe_ddp,
    cpu_safe_launch,
    plain_optimizer_params,
    metric_printer_tolerates_repeated_writes,
    refuse_vi_data_in_fastreid_train_loader,
)


def apply() -> None:
    """Apply every shim once (later calls do nothing)."""
    global _APPLIED
    if _APPLIED:
        return
    for shim in SHIMS:
        shim()
    _APPLIED = True

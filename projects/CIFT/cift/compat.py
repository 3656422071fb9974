"""Run-time adaptations of fastreid 1.4.0 to torch 2 / Python 3.11 / numpy 2 / CPU-only machines.

This is the only module that patches fastreid. Each shim is one function with a comment saying
what breaks without it; `apply()` runs them all and is called by `import cift` before anything
else touches fastreid. Every shim is idempotent and is covered by a test that fails without it.
Nothing in site-packages is edited: the shims replace module attributes at run time; the
private ones they reach go through `cift.fastreid_private`.
"""
from __future__ import annotations

import collections
import collections.abc
import logging
import sys
import types
from typing import Any, Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from . import fastreid_private
from .errors import CiftInputError

logger = logging.getLogger(__name__)

_APPLIED = False


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
    if not torch.cuda.is_available():
        fastreid_private.default_config().MODEL.DEVICE = "cpu"


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


def _distributed_worker(local_rank, main_func, world_size, num_gpus_per_machine, machine_rank,
                        dist_url, args, timeout_s: float = 0):
    """fastreid's launch worker on `cift.engine.launch.join_spawned_group` (gloo on the CPU, a
    process-group timeout). Module level, so that `mp.spawn` can pickle it. (train_net.py
    spawns `cift.engine.launch.spawned_worker`, which also names a rank that goes silent.)"""
    # Imported when a spawned process runs: the engine sits above compat (and the shim probe,
    # tests/helpers/compat_program.py, loads this module under another package name).
    from fastreid.utils import comm

    from cift.engine.launch import join_spawned_group

    join_spawned_group(local_rank, world_size, num_gpus_per_machine, machine_rank, dist_url,
                       timeout_s)
    comm.synchronize()
    main_func(*args)


def cpu_safe_launch() -> None:
    """fastreid's `launch()` workers assert CUDA and always use NCCL; use `_distributed_worker`
    above instead."""
    fastreid_private.set_launch_worker(_distributed_worker)


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


def setup_without_output_dir() -> None:
    """`default_setup` leaves an empty OUTPUT_DIR alone (no folder, no config.yaml) but passes
    "" to `setup_logger`, which then makes the folder "" (FileNotFoundError): give it None, so
    that a run with OUTPUT_DIR "" logs to the console only and writes nothing."""
    from fastreid.engine import defaults

    original = getattr(defaults.setup_logger, "_cift_original", defaults.setup_logger)

    def setup_logger(output=None, *args, **kwargs):
        return original(output or None, *args, **kwargs)

    setup_logger._cift_original = original
    defaults.setup_logger = setup_logger


CROSS_MODALITY_SAMPLER = "CrossModalityIdentitySampler"


def check_fastreid_train_loader(cfg) -> None:
    """Raise CiftInputError when `cfg` asks fastreid's own training loader for cift's
    visible-infrared data: the cross-modality sampler, or a data set with a `config_kwargs`
    hook (cift's, whose options and per-image modality that loader cannot pass on)."""
    from fastreid.data.datasets import DATASET_REGISTRY

    ours = [name for name in cfg.DATASETS.NAMES
            if name in fastreid_private.registered_names(DATASET_REGISTRY)
            and hasattr(DATASET_REGISTRY.get(name), "config_kwargs")]
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if sampler == CROSS_MODALITY_SAMPLER or ours:
        what = (f"DATALOADER.SAMPLER_TRAIN {sampler!r}" if sampler == CROSS_MODALITY_SAMPLER
                else f"DATASETS.NAMES {tuple(ours)}")
        raise CiftInputError(f"{what}: fastreid's build_reid_train_loader(cfg) (DefaultTrainer) "
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
    setup_without_output_dir,
)


def apply() -> None:
    """Apply every shim once (later calls do nothing)."""
    global _APPLIED
    if _APPLIED:
        return
    for shim in SHIMS:
        shim()
    _APPLIED = True

"""Every check of a job's inputs, run before anything is written to OUTPUT_DIR.

`validate(cfg, ...)` runs the functions of `CHECKS` in order; each takes the `Job` (the config,
the kind of run, the world size, data sets loaded once) and raises `CiftInputError` with one
line naming the config key, its value and what is allowed. Cheap config checks come first,
then the ones that read the data sets, the checkpoint and finally every image.

To add a check, write `def check_something(job: Job) -> None` and list it in `CHECKS` (or
insert it from another module: `CHECKS.insert(CHECKS.index(check_weights), check_something)`).
Under `--num-gpus N` the launcher runs the checks once before it spawns any process.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.build import CROSS_MODALITY_SAMPLER, TRAIN_SAMPLERS, load_dataset
from ..data.cross_modality_sampler import CrossModalityIdentitySampler
from ..data.image_check import check_dataset_images
from ..data.modality import is_visible
from ..data.transforms import INTERPOLATIONS, RATIO_SAMPLINGS
from ..errors import CiftInputError, check_choice
from ..evaluation.protocols import CMC_MODES, SYSU_CAMERAS
from ..evaluation.retrieval import check_retrieval
from ..evaluation.tasks import build_tasks, metric_names
from ..fastreid_private import registered_names
from ..modeling.backbone import check_pretrained_weights
from ..search_settings import check_search_keys, transfer_settings
from .checkpoint import (
    AtomicCheckpointer,
    checkpoint_with_model,
    load_checkpoint_file,
    num_classes_in_state,
)
from .resume import check_resume
from .schedule import check_schedule

# fastreid samplers that draw K images per identity (the batch must split into K-groups)
IDENTITY_SAMPLERS = ("NaiveIdentitySampler", "BalancedIdentitySampler", "SetReWeightSampler")


@dataclass
class Job:
    """What the checks look at: the config, the kind of run and its number of processes."""

    cfg: Any
    eval_only: bool = False
    world_size: int = 1
    trust: bool = False
    resume: bool = False
    datasets: dict[str, Any] = field(default_factory=dict)

    def dataset(self, name: str):
        """The registered data set `name`, loaded once per job."""
        if name not in self.datasets:
            self.datasets[name] = load_dataset(self.cfg, name)
        return self.datasets[name]

    @property
    def train_names(self) -> list[str]:
        return [] if self.eval_only else list(dict.fromkeys(self.cfg.DATASETS.NAMES))

    @property
    def test_names(self) -> list[str]:
        return list(dict.fromkeys(self.cfg.DATASETS.TESTS))

    @property
    def per_rank_batch(self) -> int:
        return self.cfg.SOLVER.IMS_PER_BATCH // self.world_size


Check = Callable[[Job], None]


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def require_int(key: str, value, low: int = 1, high: int | None = None, why: str = "") -> None:
    """`value` must be an int in [low, high]."""
    if is_int(value) and value >= low and (high is None or value <= high):
        return
    allowed = f"an int >= {low}" if high is None else f"an int in {low}..{high}"
    raise CiftInputError(f"{key} {value!r}: expected {allowed}{why}")


def require_positive(key: str, value) -> None:
    """`value` must be a finite number > 0."""
    if (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0):
        return
    raise CiftInputError(f"{key} {value!r}: expected a finite number > 0")


def check_device(job: Job) -> None:
    device = job.cfg.MODEL.DEVICE
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise CiftInputError(f"MODEL.DEVICE {device!r}: expected cpu or cuda[:N]") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise CiftInputError(f"MODEL.DEVICE {device!r}: no GPU is visible (use MODEL.DEVICE cpu)")


def check_dist_timeout(job: Job) -> None:
    value = job.cfg.DIST_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise CiftInputError(f"DIST_TIMEOUT_S {value!r}: expected seconds >= 0 (0: 300 with "
                             "gloo, 1800 with NCCL)")


def check_registries(job: Job) -> None:
    """Registered meta-architecture, backbone, heads; a known training sampler."""
    from fastreid.modeling.backbones import BACKBONE_REGISTRY
    from fastreid.modeling.heads import REID_HEADS_REGISTRY
    from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

    m = job.cfg.MODEL
    check_choice("MODEL.META_ARCHITECTURE", m.META_ARCHITECTURE,
                 registered_names(META_ARCH_REGISTRY))
    check_choice("MODEL.BACKBONE.NAME", m.BACKBONE.NAME, registered_names(BACKBONE_REGISTRY))
    check_choice("MODEL.HEADS.NAME", m.HEADS.NAME, registered_names(REID_HEADS_REGISTRY))
    if not job.eval_only:
        check_choice("DATALOADER.SAMPLER_TRAIN", job.cfg.DATALOADER.SAMPLER_TRAIN, TRAIN_SAMPLERS)


def is_cift(cfg) -> bool:
    from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

    from ..modeling.meta_arch.cift import CIFT

    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    return isinstance(model, type) and issubclass(model, CIFT)


def check_cift(job: Job) -> None:
    """MODEL.CIFT.* of a CIFT model: names, temperatures, k against the training batch."""
    cfg = job.cfg
    if not is_cift(cfg):
        return
    from ..modeling.graph import GRAPHS
    from ..modeling.meta_arch.cift import PROJECTIONS

    c = cfg.MODEL.CIFT
    check_choice("MODEL.CIFT.GRAPH", c.GRAPH, GRAPHS)
    check_choice("MODEL.CIFT.PROJECTION", c.PROJECTION, PROJECTIONS)
    transfer_settings(cfg)  # TEST.TRANSFER.*
    require_positive("MODEL.CIFT.TAU_HOM", c.TAU_HOM)
    require_positive("MODEL.CIFT.TAU_HET", c.TAU_HET)
    if c.CRI.ENABLED:
        require_int("MODEL.CIFT.CRI.SAMPLES", c.CRI.SAMPLES)
    require_int("MODEL.CIFT.TOPK", c.TOPK)
    if job.eval_only or not is_int(cfg.SOLVER.IMS_PER_BATCH) or job.per_rank_batch < 2:
        return
    # H2FT: a gallery row sees the gallery half of its per-rank batch; GFT: the whole batch.
    # A larger k keeps every neighbour, i.e. a fully connected graph.
    half = c.GRAPH == "h2ft"
    limit = job.per_rank_batch // 2 if half else job.per_rank_batch
    require_int("MODEL.CIFT.TOPK", c.TOPK, 1, limit,
                f" (a {'branch gallery: half of ' if half else 'graph: '}the per-rank batch "
                f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} / {job.world_size} rank(s); "
                "more keeps every node, a fully connected graph)")


def check_protocol_keys(job: Job) -> None:
    """TEST.SYSU.* and TEST.LLCM.* values (the draws themselves: `check_test_tasks`)."""
    s, c = job.cfg.TEST.SYSU, job.cfg.TEST.LLCM
    if not s.MODES:
        raise CiftInputError(f"TEST.SYSU.MODES {s.MODES!r}: expected one or more of "
                             f"{tuple(SYSU_CAMERAS)}")
    for mode in s.MODES:
        check_choice("TEST.SYSU.MODES", mode, tuple(SYSU_CAMERAS))
    if not s.SHOTS:
        raise CiftInputError(f"TEST.SYSU.SHOTS {s.SHOTS!r}: expected one or more ints >= 1 "
                             "(1 single-shot, 10 multi-shot)")
    for shots in s.SHOTS:
        require_int("TEST.SYSU.SHOTS", shots, why=" per gallery (1 single-shot, 10 multi-shot)")
    require_int("TEST.SYSU.TRIALS", s.TRIALS)
    require_int("TEST.LLCM.TRIALS", c.TRIALS)
    require_int("TEST.LLCM.SHOTS", c.SHOTS)
    check_choice("TEST.LLCM.VIS_TO_IR", c.VIS_TO_IR, ("semantic", "reference"))


def check_retrieval_keys(job: Job) -> None:
    check_retrieval(job.cfg)
    check_search_keys(job.cfg)  # TEST.SEARCH.BACKEND; one line per deprecated key set


def check_recipe_keys(job: Job) -> None:
    """INPUT.INTERPOLATION, INPUT.REA.RATIO_SAMPLING / ATTEMPTS and TEST.CMC_MODE."""
    cfg = job.cfg
    check_choice("INPUT.INTERPOLATION", cfg.INPUT.INTERPOLATION, tuple(INTERPOLATIONS))
    check_choice("INPUT.REA.RATIO_SAMPLING", cfg.INPUT.REA.RATIO_SAMPLING, RATIO_SAMPLINGS)
    require_int("INPUT.REA.ATTEMPTS", cfg.INPUT.REA.ATTEMPTS)
    check_choice("TEST.CMC_MODE", cfg.TEST.CMC_MODE, CMC_MODES)


def check_schedule_keys(job: Job) -> None:
    """SOLVER.SCHED / WARMUP_* / DELAY_EPOCHS of a training run (the epoch LR schedule)."""
    if not job.eval_only:
        check_schedule(job.cfg)


def check_resume_batch(job: Job) -> None:
    """A --resume keeps the per-GPU batch size of the checkpoint it continues."""
    if job.resume and not job.eval_only:
        check_resume(job.cfg, job.world_size)


def check_batch_keys(job: Job) -> None:
    """SOLVER.IMS_PER_BATCH and DATALOADER.NUM_INSTANCE against the sampler and world size."""
    if job.eval_only:
        return
    cfg, w = job.cfg, job.world_size
    k, ims = cfg.DATALOADER.NUM_INSTANCE, cfg.SOLVER.IMS_PER_BATCH
    require_int("DATALOADER.NUM_INSTANCE", k)
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if sampler == CROSS_MODALITY_SAMPLER:
        step, why = 2 * k * w, (f"2·K·world size = 2·{k}·{w}: each rank's batch holds K "
                                "visible and K infrared images per identity")
    elif sampler in IDENTITY_SAMPLERS:
        step, why = k * w, f"K·world size = {k}·{w}"
    else:
        step, why = w, "the world size"
    if not (is_int(ims) and ims >= 1 and ims % step == 0):
        raise CiftInputError(f"SOLVER.IMS_PER_BATCH {ims!r}: expected a positive multiple of "
                             f"{step} ({why}; K = DATALOADER.NUM_INSTANCE)")


def check_splits(job: Job) -> None:
    """Every data set loads and has images in the splits the run reads."""
    cfg = job.cfg
    if not job.eval_only and not cfg.DATASETS.NAMES:
        raise CiftInputError("DATASETS.NAMES (): expected one or more training data sets")
    if not cfg.DATASETS.TESTS:
        raise CiftInputError("DATASETS.TESTS (): expected one or more test data sets")
    for name in job.train_names:
        if not job.dataset(name).train:
            raise CiftInputError(f"DATASETS.NAMES {name}: the train split is empty (no images "
                                 f"under {job.dataset(name).data_dir})")
    for name in job.test_names:
        data = job.dataset(name)
        for split in ("query", "gallery"):
            if not getattr(data, split):
                raise CiftInputError(f"DATASETS.TESTS {name}: the {split} split is empty (no "
                                     f"images under {data.data_dir})")


def check_sampler_fits_data(job: Job) -> None:
    """The cross-modality sampler can draw its batches from the training identities."""
    cfg = job.cfg
    if job.eval_only or cfg.DATALOADER.SAMPLER_TRAIN != CROSS_MODALITY_SAMPLER:
        return
    items = [item for name in job.train_names for item in job.dataset(name).train]
    labels = {pid: i for i, pid in enumerate(dict.fromkeys(item[1] for item in items))}
    try:
        CrossModalityIdentitySampler(
            pids=[labels[item[1]] for item in items],
            is_visible=[is_visible(item[3]) for item in items],
            batch_size=job.per_rank_batch, num_instances=cfg.DATALOADER.NUM_INSTANCE, seed=0,
            rank=0, world_size=job.world_size)
    except ValueError as err:
        raise CiftInputError(
            f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} with DATALOADER.NUM_INSTANCE "
            f"{cfg.DATALOADER.NUM_INSTANCE} on {job.world_size} rank(s) does not fit "
            f"DATASETS.NAMES {tuple(job.train_names)}: {err}") from None


def main_metric_choices(tasks, top_r: int) -> list[str]:
    """The "<task>/<metric>" names an evaluation of `tasks` reports (TEST.MAIN_METRIC)."""
    return [f"{task.name}/{name}" for task in tasks for name in metric_names(top_r)]


def check_test_tasks(job: Job) -> None:
    """Each test set's protocol can draw its galleries, and reports TEST.MAIN_METRIC."""
    cfg = job.cfg
    key = cfg.TEST.MAIN_METRIC
    top_r = check_retrieval(cfg)
    for name in job.test_names:
        data = job.dataset(name)
        items = list(data.query) + list(data.gallery)
        try:
            tasks = build_tasks(cfg, data.protocol, items, len(data.query))
        except ValueError as err:
            shots = {"sysu": "TEST.SYSU.SHOTS", "llcm": "TEST.LLCM.SHOTS"}.get(data.protocol,
                                                                             "TEST")
            value = cfg.TEST.SYSU.SHOTS if data.protocol == "sysu" else cfg.TEST.LLCM.SHOTS
            raise CiftInputError(f"{shots} {value!r}: the {name} galleries cannot be drawn "
                                 f"({err})") from None
        choices = main_metric_choices(tasks, top_r)
        if key and key not in choices:
            raise CiftInputError(f"TEST.MAIN_METRIC {key!r}: not reported for {name}; expected "
                                 f"'' (the first task's mAP) or one of {choices}")


def check_weights_path(job: Job) -> None:
    """MODEL.WEIGHTS names a file (given for an evaluation)."""
    path = job.cfg.MODEL.WEIGHTS
    if job.eval_only and not path:
        raise CiftInputError("--eval-only needs MODEL.WEIGHTS (a checkpoint to evaluate)")
    if path and not os.path.isfile(path):
        raise CiftInputError(f"MODEL.WEIGHTS {path}: file not found")


def check_weights(job: Job) -> None:
    """MODEL.WEIGHTS loads without running code; for an evaluation it fits the model."""
    cfg = job.cfg
    path = cfg.MODEL.WEIGHTS
    if not path:
        return
    state = checkpoint_with_model(load_checkpoint_file(path, trust=job.trust), path)["model"]
    if not job.eval_only:
        return  # training initialisation loads what fits and logs the rest (fastreid)
    from fastreid.modeling import build_model

    model_cfg = cfg.clone()
    model_cfg.defrost()
    model_cfg.MODEL.DEVICE = "cpu"
    model_cfg.MODEL.BACKBONE.PRETRAIN = False
    if model_cfg.MODEL.HEADS.NUM_CLASSES == 0:
        model_cfg.MODEL.HEADS.NUM_CLASSES = num_classes_in_state(state, path)
    model_cfg.freeze()
    AtomicCheckpointer(build_model(model_cfg), strict=True).load_model_state(state, path)


def check_pretrained(job: Job) -> None:
    """A training run's MODEL.BACKBONE.PRETRAIN weights exist and fit the backbone
    (an evaluation loads MODEL.WEIGHTS instead)."""
    if not job.eval_only:
        check_pretrained_weights(job.cfg)


def check_images(job: Job) -> None:
    """Every image of the splits the run reads decodes (DATALOADER.CHECK_IMAGES)."""
    if not job.cfg.DATALOADER.CHECK_IMAGES:
        return
    for name in dict.fromkeys(job.train_names + job.test_names):
        data = job.dataset(name)
        splits = ([data.train] if name in job.train_names else []) + (
            [data.query, data.gallery] if name in job.test_names else [])
        paths = [item[0] for split in splits for item in split]
        check_dataset_images(name, paths, str(data.data_dir))


CHECKS: list[Check] = [
    check_device,
    check_weights_path,
    check_dist_timeout,
    check_registries,
    check_batch_keys,
    check_cift,
    check_protocol_keys,
    check_retrieval_keys,
    check_recipe_keys,
    check_schedule_keys,
    check_splits,
    check_sampler_fits_data,
    check_test_tasks,
    check_weights,
    check_resume_batch,
    check_pretrained,
    check_images,
]


def validate(cfg, *, eval_only: bool = False, world_size: int = 1, trust: bool = False,
             resume: bool = False, checks: list[Check] | None = None) -> Job:
    """Run every check (default `CHECKS`) on a job; the first bad input raises CiftInputError."""
    job = Job(cfg, eval_only=eval_only, world_size=max(1, int(world_size)), trust=trust,
              resume=resume)
    for check in CHECKS if checks is None else checks:
        check(job)
    return job

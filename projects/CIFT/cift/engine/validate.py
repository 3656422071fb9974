"""The checks of a job's inputs that the config schema cannot make, run before anything is
written to OUTPUT_DIR: the machine (a GPU), the world size (batches split over processes),
files on disk, data set contents, checkpoints and images. Every config value has already been
checked against the schema when the config was loaded (`cift.config.load_config`).

`validate(cfg, ...)` runs the functions of `CHECKS` in order; each takes the `Job` (the config,
the kind of run, the world size, data sets loaded once) and raises `CiftInputError` with one
line naming the config key, its value and what is allowed. Cheap checks come first, then the
ones that read the data sets, the checkpoint and finally every image.

To add a check, write `def check_something(job: Job) -> None` and list it in `CHECKS` (or
insert it from another module: `CHECKS.insert(CHECKS.index(check_weights), check_something)`).
Under `--num-gpus N` the launcher runs the checks once before it spawns any process.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.build import CROSS_MODALITY_SAMPLER, load_dataset
from ..data.cross_modality_sampler import CrossModalityIdentitySampler
from ..data.image_check import check_dataset_images
from ..data.modality import is_visible
from ..errors import CiftInputError
from ..evaluation.tasks import build_tasks, metric_names
from ..modeling.backbone import check_pretrained_weights
from .checkpoint import check_weights_file
from .output_lock import check_output_dir
from .resume import check_resume

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


def check_device(job: Job) -> None:
    """A cuda MODEL.DEVICE needs a visible GPU."""
    device = job.cfg.MODEL.DEVICE
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise CiftInputError(f"MODEL.DEVICE {device!r}: no GPU is visible (use MODEL.DEVICE cpu)")


def is_cift(cfg) -> bool:
    from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

    from ..modeling.meta_arch.cift import CIFT

    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    return isinstance(model, type) and issubclass(model, CIFT)


def check_topk_batch(job: Job) -> None:
    """MODEL.CIFT.TOPK of a CIFT training run against the graph's nodes in a per-rank batch."""
    cfg = job.cfg
    if job.eval_only or not is_cift(cfg) or job.per_rank_batch < 2:
        return
    # H2FT: a gallery row sees the gallery half of its per-rank batch; GFT: the whole batch.
    # A larger k keeps every neighbour, i.e. a fully connected graph.
    c = cfg.MODEL.CIFT
    half = c.GRAPH == "h2ft"
    limit = job.per_rank_batch // 2 if half else job.per_rank_batch
    k = c.TOPK
    if k > limit:
        raise CiftInputError(
            f"MODEL.CIFT.TOPK {k!r}: expected an int in 1..{limit} (a "
            f"{'branch gallery: half of ' if half else 'graph: '}the per-rank batch "
            f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} / {job.world_size} rank(s); more "
            "keeps every node, a fully connected graph)")


def check_resume_batch(job: Job) -> None:
    """A --resume keeps the per-GPU batch size and the model of the checkpoint it continues."""
    if job.resume and not job.eval_only:
        check_resume(job.cfg, job.world_size, num_classes=train_classes(job))


def check_batch_keys(job: Job) -> None:
    """TEST.IMS_PER_BATCH against the world size; SOLVER.IMS_PER_BATCH against the sampler's
    K (DATALOADER.NUM_INSTANCE) and the world size."""
    cfg, w = job.cfg, job.world_size
    test_batch = cfg.TEST.IMS_PER_BATCH
    if test_batch < w:
        raise CiftInputError(f"TEST.IMS_PER_BATCH {test_batch}: expected at least "
                             f"the world size {w} (each process reads IMS_PER_BATCH / {w})")
    if job.eval_only:
        return
    k, ims = cfg.DATALOADER.NUM_INSTANCE, cfg.SOLVER.IMS_PER_BATCH
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if sampler == CROSS_MODALITY_SAMPLER:
        step, why = 2 * k * w, (f"2·K·world size = 2·{k}·{w}: each rank's batch holds K "
                                "visible and K infrared images per identity")
    elif sampler in IDENTITY_SAMPLERS:
        step, why = k * w, f"K·world size = {k}·{w}"
    else:
        step, why = w, "the world size"
    if ims % step:
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


def check_num_classes(job: Job) -> None:
    """A training run's MODEL.HEADS.NUM_CLASSES: 0 (the training identities) or enough
    classifier rows for every training identity."""
    num_classes = job.cfg.MODEL.HEADS.NUM_CLASSES
    if job.eval_only or not num_classes:
        return
    ids = train_classes(job)
    if num_classes < ids:
        raise CiftInputError(f"MODEL.HEADS.NUM_CLASSES {num_classes}: expected 0 (the number "
                             f"of training identities) or at least {ids}, the identities "
                             f"of DATASETS.NAMES {tuple(job.train_names)}")


def main_metric_choices(tasks, top_r: int) -> list[str]:
    """The "<task>/<metric>" names an evaluation of `tasks` reports (TEST.MAIN_METRIC)."""
    return [f"{task.name}/{name}" for task in tasks for name in metric_names(top_r)]


def check_test_tasks(job: Job) -> None:
    """Each test set's protocol can draw its galleries and reports TEST.MAIN_METRIC; the tasks
    of TEST.TOPOLOGY.TASKS are tasks of every test set."""
    cfg = job.cfg
    key = cfg.TEST.MAIN_METRIC
    top_r = cfg.TEST.RETRIEVAL.TOP_R
    topology = cfg.TEST.TOPOLOGY.TASKS if cfg.TEST.TOPOLOGY.ENABLED else ()
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
        names = [task.name for task in tasks]
        if any(task not in names for task in topology):
            raise CiftInputError(f"TEST.TOPOLOGY.TASKS {tuple(topology)!r}: expected tasks of "
                                 f"{name} among {names}")


def check_weights_path(job: Job) -> None:
    """MODEL.WEIGHTS names a file (given for an evaluation)."""
    path = job.cfg.MODEL.WEIGHTS
    if job.eval_only and not path:
        raise CiftInputError("--eval-only needs MODEL.WEIGHTS (a checkpoint to evaluate)")
    if path and not os.path.isfile(path):
        raise CiftInputError(f"MODEL.WEIGHTS {path}: file not found")


def check_weights(job: Job) -> None:
    """MODEL.WEIGHTS loads without running code and is finite; it fits the model (every tensor
    for an evaluation, at least one for a training initialisation)."""
    path = job.cfg.MODEL.WEIGHTS
    if path:
        check_weights_file(job.cfg, path, eval_only=job.eval_only, trust=job.trust,
                           num_classes=0 if job.eval_only else train_classes(job))


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


# Files, data set contents and checkpoints (beside check_splits, check_weights and check_images
# above): the output folder, train / test overlap, the training identities a checkpoint must
# fit.

def check_output_folder(job: Job) -> None:
    """The folder the job writes into (OUTPUT_DIR, or its eval/<weights> folder for
    --eval-only) is a writable folder no other job holds (cift.engine.output_lock; under
    torchrun the other ranks see rank 0's lock, so only rank 0 looks at it)."""
    from fastreid.utils import comm

    from .setup import eval_output_dir  # setup imports this module

    check_output_dir(eval_output_dir(job.cfg) if job.eval_only else job.cfg.OUTPUT_DIR,
                     lock=comm.is_main_process())  # the main process locks it (setup)


def check_train_test_disjoint(job: Job) -> None:
    """A data set trained and tested on in one run shares no image between its train split and
    its query / gallery (a test image seen in training inflates every score)."""
    for name in set(job.train_names) & set(job.test_names):
        data = job.dataset(name)
        train = {item[0] for item in data.train}
        shared = sorted(train.intersection(item[0] for item in data.query + data.gallery))
        if shared:
            raise CiftInputError(f"DATASETS.NAMES and DATASETS.TESTS {name}: {len(shared)} "
                                 f"images are in both the train and the test split (first: "
                                 f"{shared[0]}); the data set's split lists overlap")


def train_classes(job: Job) -> int:
    """Identities of the training data sets (the classes the model is built with)."""
    return len({item[1] for name in job.train_names for item in job.dataset(name).train})


CHECKS: list[Check] = [
    check_output_folder,
    check_device,
    check_weights_path,
    check_batch_keys,
    check_topk_batch,
    check_splits,
    check_num_classes,
    check_train_test_disjoint,
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

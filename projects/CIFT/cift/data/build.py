"""Train and test loaders for VI-ReID items (img_path, pid, camid, modality).

They reuse fastreid's `build_reid_train_loader` / `build_reid_test_loader` with explicit data
sets and samplers (fastreid's documented seam), adding the modality of every image to the batch.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch
from fastreid.data import build_reid_test_loader, build_reid_train_loader
from fastreid.data.build import fast_batch_collator
from fastreid.data.common import CommDataset
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.utils import comm

from ..errors import CiftInputError
from ..fastreid_private import registered_names
from .cross_modality_sampler import CrossModalityIdentitySampler
from .images import read_rgb
from .modality import is_visible
from .transforms import build_vi_transforms

logger = logging.getLogger(__name__)

CROSS_MODALITY_SAMPLER = "CrossModalityIdentitySampler"
# DATALOADER.SAMPLER_TRAIN values: ours, then those fastreid 1.4.0's train loader builds by name
TRAIN_SAMPLERS = (CROSS_MODALITY_SAMPLER, "TrainingSampler", "NaiveIdentitySampler",
                  "BalancedIdentitySampler", "SetReWeightSampler", "ImbalancedDatasetSampler")


class VIDataset(CommDataset):
    """fastreid's CommDataset over (img_path, pid, camid, modality) items; each sample also
    carries `is_visible` (bool)."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, pid, camid, modality = self.img_items[index][:4]
        image = read_rgb(path)
        if self.transform is not None:
            image = self.transform(image)
        if self.relabel:
            pid, camid = self.pid_dict[pid], self.cam_dict[camid]
        return {"images": image, "targets": pid, "camids": camid, "img_paths": path,
                "is_visible": is_visible(modality)}


def datasets_root() -> str:
    """Root of all data sets: $FASTREID_DATASETS (read at call time), default ./datasets."""
    return os.getenv("FASTREID_DATASETS", "datasets")


def load_dataset(cfg, name: str):
    """Instantiate the registered data set `name` under $FASTREID_DATASETS, with the
    constructor arguments its `config_kwargs(cfg)` classmethod takes from the config (none
    for a data set without that hook, e.g. fastreid's own)."""
    try:
        factory = DATASET_REGISTRY.get(name)
    except KeyError:
        known = ", ".join(registered_names(DATASET_REGISTRY))
        raise CiftInputError(f"DATASETS: unknown data set {name!r}; known: {known}") from None
    hook = getattr(factory, "config_kwargs", None)
    return factory(root=datasets_root(), **(hook(cfg) if hook else {}))


def build_vi_train_set(cfg) -> VIDataset:
    """Training items of every data set in DATASETS.NAMES, relabelled to 0..C-1."""
    items = []
    for name in cfg.DATASETS.NAMES:
        data = load_dataset(cfg, name)
        if comm.is_main_process():
            data.show_train()
        items.extend(data.train)
    return VIDataset(items, build_vi_transforms(cfg, is_train=True), relabel=True)


def build_vi_train_loader(cfg):
    """Infinite train loader; DATALOADER.SAMPLER_TRAIN picks the cross-modality identity
    sampler or any of fastreid's samplers."""
    train_set = build_vi_train_set(cfg)
    if cfg.DATALOADER.SAMPLER_TRAIN != CROSS_MODALITY_SAMPLER:
        return build_reid_train_loader(cfg, train_set=train_set)
    items = train_set.img_items
    sampler = CrossModalityIdentitySampler(
        pids=[train_set.pid_dict[item[1]] for item in items],
        is_visible=[is_visible(item[3]) for item in items],
        batch_size=cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(),
        num_instances=cfg.DATALOADER.NUM_INSTANCE,
        batches_per_epoch=cfg.SOLVER.ITERS_PER_EPOCH or None,
    )
    return build_reid_train_loader(train_set=train_set, sampler=sampler,
                                   total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
                                   num_workers=cfg.DATALOADER.NUM_WORKERS)


def build_vi_test_loader(cfg, dataset_name: str):
    """Loader over query + gallery pool of `dataset_name` (test transforms, no relabelling).

    Returns (loader, num_query, dataset) — the data set keeps the items the protocols need.
    """
    data = load_dataset(cfg, dataset_name)
    if comm.is_main_process():
        data.show_test()
    test_set = VIDataset(data.query + data.gallery, build_vi_transforms(cfg, is_train=False),
                         relabel=False)
    loader, num_query = build_reid_test_loader(
        test_set=test_set, test_batch_size=cfg.TEST.IMS_PER_BATCH, num_query=len(data.query),
        num_workers=cfg.DATALOADER.NUM_WORKERS)
    return loader, num_query, data


def build_inference_loader(dataset: torch.utils.data.Dataset, batch_size: int,
                           num_workers: int = 0, collate_fn=fast_batch_collator
                           ) -> torch.utils.data.DataLoader:
    """Loader over every item of `dataset`, in order, in this process alone: for what one
    process reads whole (topology probes, gallery search). The evaluation's loader
    (:func:`build_vi_test_loader`) is fastreid's instead, which shards the items over the
    processes of a distributed job."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers, collate_fn=collate_fn)

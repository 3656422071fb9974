"""CIFTTrainer: fastreid's DefaultTrainer with VI-ReID loaders, sampler epochs, the SYSU
evaluator, atomic checkpoints and progress printing."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict

import numpy as np
import torch
from fastreid.engine import DefaultTrainer, hooks
from fastreid.engine.train_loop import AMPTrainer, SimpleTrainer, TrainerBase
from fastreid.evaluation import inference_on_dataset
from fastreid.utils import comm
from fastreid.utils.events import CommonMetricPrinter
from fastreid.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..analysis.hooks import build_topology_hook
from ..analysis.plots import save_cmc_curves
from ..data import build_vi_test_loader, build_vi_train_loader
from ..evaluation import VIEvaluator, build_tasks, format_protocol_table
from ..evaluation.report import RESULTS_FILE
from ..evaluation.vi_evaluator import GraphTransfer
from .checkpoint import AtomicCheckpointer, atomic_write_json
from .hooks import EpochEndWriter, ScalarJSONWriter, ScalarTensorboardWriter, VIEvalHook

logger = logging.getLogger(__name__)



def numpy_transfer(model) -> GraphTransfer | None:
    """The model's test-time graph transfer on numpy arrays, or None for a model without one."""
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if not hasattr(module, "transfer_test_features"):
        return None

    def transfer(gallery: np.ndarray, queries: np.ndarray, branch: str):
        g, q = module.transfer_test_features(torch.from_numpy(gallery), torch.from_numpy(queries),
                                             branch)
        return g.cpu().numpy(), q.cpu().numpy()

    return transfer


def epoch_length(cfg, data_loader) -> int:
    """Iterations per epoch: SOLVER.ITERS_PER_EPOCH if set, else the cross-modality sampler's
    epoch, else fastreid's len(train set) // batch."""
    if cfg.SOLVER.ITERS_PER_EPOCH > 0:
        return cfg.SOLVER.ITERS_PER_EPOCH
    sampler = getattr(data_loader.batch_sampler, "sampler", None)
    if hasattr(sampler, "batches_per_epoch"):
        return sampler.batches_per_epoch
    return max(1, len(data_loader.dataset) // cfg.SOLVER.IMS_PER_BATCH)


def with_epoch_schedule(cfg, iters_per_epoch: int):
    """A copy of cfg whose SOLVER.WARMUP_ITERS comes from SOLVER.WARMUP_EPOCHS (if set)."""
    cfg = cfg.clone()
    cfg.defrost()
    if cfg.SOLVER.WARMUP_EPOCHS > 0:
        cfg.SOLVER.WARMUP_ITERS = cfg.SOLVER.WARMUP_EPOCHS * iters_per_epoch
    cfg.freeze()
    return cfg


class CIFTTrainer(DefaultTrainer):
    """Builds the same objects as DefaultTrainer (model, optimizer with heads x
    HEADS_LR_FACTOR, scheduler, checkpointer, hooks), with an epoch defined by the sampler."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            setup_logger()
        data_loader = self.build_train_loader(cfg)
        cfg = self.auto_scale_hyperparams(cfg, data_loader.dataset.num_classes)
        self.iters_per_epoch = epoch_length(cfg, data_loader)
        cfg = with_epoch_schedule(cfg, self.iters_per_epoch)
        model = self.build_model(cfg)
        optimizer, param_wrapper = self.build_optimizer(cfg, model)
        if comm.get_world_size() > 1:
            on_gpu = next(model.parameters()).device.type == "cuda"
            model = DistributedDataParallel(
                model, device_ids=[comm.get_local_rank()] if on_gpu else None,
                broadcast_buffers=False)
        trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
        self._trainer = trainer_cls(model, data_loader, optimizer, param_wrapper)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer, self.iters_per_epoch)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR,
                                               save_to_disk=comm.is_main_process(),
                                               optimizer=optimizer, **self.scheduler)
        self.start_epoch = 0
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.max_iter = self.max_epoch * self.iters_per_epoch
        self.warmup_iters = cfg.SOLVER.WARMUP_ITERS
        self.delay_epochs = cfg.SOLVER.DELAY_EPOCHS
        self.cfg = cfg
        logger.info(f"{self.iters_per_epoch} iterations per epoch, {self.max_iter} in all")
        self.register_hooks(self.build_hooks())

    def build_hooks(self) -> list:
        """fastreid's hooks; every evaluation reaches metrics.json and tensorboard (see
        cift.engine.hooks), written every SOLVER.LOG_PERIOD iterations and at epoch ends."""
        ret = super().build_hooks()
        for i, hook in enumerate(ret):
            if isinstance(hook, hooks.PeriodicWriter):
                ret[i] = EpochEndWriter(hook._writers, self.cfg.SOLVER.LOG_PERIOD)
            elif isinstance(hook, hooks.EvalHook):
                ret[i] = VIEvalHook(hook._period, hook._func, self.cfg.DATASETS.TESTS)
        topology = build_topology_hook(self.cfg, self.model)
        if topology is not None:
            # right after the evaluation (same period), before the checkpointer and writers
            at = next(i for i, h in enumerate(ret) if isinstance(h, hooks.EvalHook)) + 1
            ret.insert(at, topology)
        return ret

    def build_writers(self) -> list:
        """fastreid's console printer, metrics.json and tensorboard writers; the last two write
        scalars put at an iteration already written (evaluations) too."""
        return [CommonMetricPrinter(self.max_iter),
                ScalarJSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
                ScalarTensorboardWriter(self.cfg.OUTPUT_DIR)]

    @classmethod
    def build_train_loader(cls, cfg):
        return build_vi_train_loader(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_dir=None, model=None):
        """Test loader and the evaluator of the data set's protocol; a CIFT `model` supplies its
        test-time transfer."""
        loader, num_query, data = build_vi_test_loader(cfg, dataset_name)
        items = data.query + data.gallery
        tasks = build_tasks(cfg, data.protocol, items, num_query)
        return loader, VIEvaluator(cfg, items, tasks, transfer=numpy_transfer(model))

    @classmethod
    def test(cls, cfg, model) -> OrderedDict:
        """Evaluate on every DATASETS.TESTS entry and print the protocol tables (main process).

        Results are keyed by data set name, or are that data set's metrics when there is only
        one: the `metric` / `<first test set>/metric` key fastreid's checkpointer looks for.
        """
        results, curves = OrderedDict(), OrderedDict()
        for name in cfg.DATASETS.TESTS:
            loader, evaluator = cls.build_evaluator(cfg, name, model=model)
            results[name] = inference_on_dataset(model, loader, evaluator,
                                                 flip_test=cfg.TEST.FLIP.ENABLED)
            curves[name] = evaluator.cmc_curves
            if comm.is_main_process():
                logger.info("\n" + format_protocol_table(results[name], title=f"{name} protocol "
                                                         "(mean ± std over trials, %)"))
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            path = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE)
            atomic_write_json(path, results)
            if cfg.TEST.CMC_PLOT:
                save_cmc_curves(curves, cfg.OUTPUT_DIR)  # cmc_<test set>.png
        return results[cfg.DATASETS.TESTS[0]] if len(results) == 1 else results

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
from fastreid.utils.events import CommonMetricPrinter, EventStorage
from fastreid.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..analysis.hooks import build_topology_hook
from ..atomic import atomic_write_json
from ..data import build_vi_test_loader, build_vi_train_loader
from ..evaluation import VIEvaluator, build_tasks, format_protocol_table
from ..evaluation.cmc_plot import save_cmc_curves
from ..evaluation.report import RESULTS_FILE
from ..evaluation.vi_evaluator import GraphTransfer
from .checkpoint import AtomicCheckpointer
from .hooks import EpochEndWriter, ScalarJSONWriter, ScalarTensorboardWriter, VIEvalHook
from .resume import (
    RunState,
    check_resume,
    check_resumed_shapes,
    seed_epoch,
    truncate_metrics,
)
from .schedule import EpochLRHook, EpochLRScheduler, check_schedule

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


def with_epoch_lr_hook(hook_list: list, scheduler: EpochLRScheduler, base_lr: float) -> list:
    """`hook_list` with fastreid's LRScheduler hook (multi-step schedule started only after
    warm-up) replaced by the epoch schedule's hook, at the same place."""
    return [EpochLRHook(scheduler, base_lr) if isinstance(h, hooks.LRScheduler) else h
            for h in hook_list]


def epoch_sampler(data_loader):
    """The loader's sampler when it draws epoch by epoch (CrossModalityIdentitySampler), else
    None (fastreid's infinite samplers)."""
    sampler = getattr(data_loader.batch_sampler, "sampler", None)
    return sampler if hasattr(sampler, "batches_in_epoch") else None


def epoch_lengths(cfg, data_loader, num_epochs: int) -> list[int]:
    """Iterations of every epoch: SOLVER.ITERS_PER_EPOCH if set, else the cross-modality
    sampler's draw of that epoch (its length varies), else fastreid's len(train set) // batch."""
    sampler = epoch_sampler(data_loader)
    if sampler is not None:
        return [sampler.batches_in_epoch(e) for e in range(num_epochs)]
    if cfg.SOLVER.ITERS_PER_EPOCH > 0:
        return [cfg.SOLVER.ITERS_PER_EPOCH] * num_epochs
    return [max(1, len(data_loader.dataset) // cfg.SOLVER.IMS_PER_BATCH)] * num_epochs


class CIFTTrainer(DefaultTrainer):
    """Builds the same objects as DefaultTrainer (model, optimizer with heads x
    HEADS_LR_FACTOR, checkpointer, hooks), with epochs drawn by the sampler (each of its own
    length), the LR a function of the epoch (`schedule.lr_factor`) and resumable epochs
    (`resume`: per-epoch seeding, run state in the checkpoint)."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            setup_logger()
        check_schedule(cfg)
        data_loader = self.build_train_loader(cfg)
        cfg = self.auto_scale_hyperparams(cfg, data_loader.dataset.num_classes)
        self.sampler = epoch_sampler(data_loader)
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.epoch_lengths = epoch_lengths(cfg, data_loader, self.max_epoch)
        self.max_iter = sum(self.epoch_lengths)
        model = self.build_model(cfg)
        optimizer, param_wrapper = self.build_optimizer(cfg, model)
        if comm.get_world_size() > 1:
            on_gpu = next(model.parameters()).device.type == "cuda"
            model = DistributedDataParallel(
                model, device_ids=[comm.get_local_rank()] if on_gpu else None,
                broadcast_buffers=False)
        trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
        # An epoch-drawn loader gets a fresh iterator per epoch (train loop); don't start one.
        self._trainer = trainer_cls(model, [] if self.sampler else data_loader, optimizer,
                                    param_wrapper)
        self._trainer.data_loader = data_loader
        self.scheduler = EpochLRScheduler(cfg, optimizer)
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
        self.run_state = RunState(seed, cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(),
                                  comm.get_world_size())
        checkpointables = {"optimizer": optimizer, "run_state": self.run_state}
        if self.sampler is not None:
            checkpointables["sampler"] = self.sampler
        if self.grad_scaler is not None:
            checkpointables["grad_scaler"] = self.grad_scaler
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR,
                                               save_to_disk=comm.is_main_process(),
                                               **checkpointables)
        self.start_epoch = 0
        self.cfg = cfg
        self._log_epoch_lengths()
        self.register_hooks(self.build_hooks())

    def _log_epoch_lengths(self) -> None:
        n = self.epoch_lengths
        logger.info(f"iterations per epoch: min {min(n)}, mean {sum(n) / len(n):.1f}, max "
                    f"{max(n)}; {self.max_iter} in all" if n else "no epochs to train")

    def resume_or_load(self, resume: bool = True) -> None:
        """fastreid's resume_or_load, plus: the per-GPU batch must be the checkpoint's, the
        sampler and run seeds come back, and metrics.json loses the records the killed run
        wrote after its last checkpoint."""
        resuming = resume and self.checkpointer.has_checkpoint()
        if resuming:
            check_resume(self.cfg, comm.get_world_size())
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if not resuming:
            return
        check_resumed_shapes(self.model, self.checkpointer.loaded_state,
                             self.checkpointer.get_checkpoint_file())
        self.start_epoch = checkpoint.get("epoch", -1) + 1
        if self.sampler is not None:  # its seed may have come back from the checkpoint
            self.epoch_lengths = epoch_lengths(self.cfg, self.data_loader, self.max_epoch)
            self.max_iter = sum(self.epoch_lengths)
        if comm.is_main_process():
            start_iter = sum(self.epoch_lengths[: self.start_epoch])
            dropped = truncate_metrics(self.cfg.OUTPUT_DIR, start_iter)
            if dropped:
                logger.info(f"metrics.json: dropped {dropped} records from iteration "
                            f"{start_iter} on (written after the last checkpoint)")

    def train(self):
        """fastreid's loop with epochs of their own lengths; each epoch starts from generators
        seeded by (run seed, epoch, rank) and, for an epoch-drawn loader, a new iterator over
        that epoch's batches. Returns the last evaluation's results (main process)."""
        if self.start_epoch >= self.max_epoch:
            logger.info(f"{self.cfg.OUTPUT_DIR}: the run is complete ({self.start_epoch} of "
                        f"{self.max_epoch} epochs trained); nothing to resume")
            return None
        self.iter = self.start_iter = sum(self.epoch_lengths[: self.start_epoch])
        logger.info(f"Starting training from epoch {self.start_epoch}")
        with EventStorage(self.start_iter) as self.storage:
            try:
                self.before_train()
                for self.epoch in range(self.start_epoch, self.max_epoch):
                    self.epoch_start_iter = self.iter
                    self.begin_epoch(self.epoch)
                    self.before_epoch()
                    for _ in range(self.epoch_lengths[self.epoch]):
                        self.before_step()
                        self.run_step()
                        self.after_step()
                        self.iter += 1
                    if self.sampler is not None:
                        self._trainer._data_loader_iter = None  # ends this epoch's workers
                    self.after_epoch()
            except Exception:
                logger.exception("Exception during training:")
                raise
            finally:
                self.after_train()
        return getattr(self, "_last_eval_results", None) if comm.is_main_process() else None

    def begin_epoch(self, epoch: int) -> None:
        """Seed every generator for `epoch` and, for an epoch-drawn loader, start the
        iterator over its batches (the train loop calls it before each epoch)."""
        generator = seed_epoch(self.run_state.seed, epoch, comm.get_rank())
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, 1)
            self.data_loader.generator = generator  # the workers' seeds follow the epoch
            self._trainer._data_loader_iter = iter(self.data_loader)

    def build_hooks(self) -> list:
        """fastreid's hooks with the epoch LR schedule in place of its LRScheduler hook; every
        evaluation reaches metrics.json and tensorboard (see cift.engine.hooks), written every
        SOLVER.LOG_PERIOD iterations and at epoch ends."""
        ret = with_epoch_lr_hook(super().build_hooks(), self.scheduler, self.cfg.SOLVER.BASE_LR)
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

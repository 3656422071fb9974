"""CIFTTrainer: fastreid's DefaultTrainer with VI-ReID loaders, sampler epochs (the loop is in
`cift.engine.epochs`), the SYSU evaluator, atomic checkpoints and progress printing."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict

import numpy as np
import torch
from fastreid.engine import DefaultTrainer, hooks
from fastreid.engine.train_loop import SimpleTrainer, TrainerBase
from fastreid.evaluation import inference_on_dataset
from fastreid.utils import comm
from fastreid.utils.events import CommonMetricPrinter
from fastreid.utils.logger import setup_logger

from ..analysis.hooks import build_topology_hook
from ..atomic import atomic_write_json
from ..compat import distributed_data_parallel
from ..data import build_vi_test_loader, build_vi_train_loader
from ..evaluation import VIEvaluator, build_tasks, format_protocol_table
from ..evaluation.cmc_plot import save_cmc_curves
from ..evaluation.report import RESULTS_FILE
from ..fastreid_private import attach_step_trainer
from ..modeling.pool_transfer import PoolTransfer
from .amp import AutocastTrainer
from .checkpoint import AtomicCheckpointer
from .epochs import EpochLoop, describe_epoch_lengths, epoch_sampler
from .hooks import ScalarJSONWriter, ScalarTensorboardWriter, with_cift_hooks
from .progress_hook import TrainingProgress
from .resume import RunState, check_resume, check_resumed_shapes
from .saved_features import features_sink, with_backbone_features
from .schedule import EpochLRScheduler, check_schedule
from .step_guards import guard_finite_loss

logger = logging.getLogger(__name__)


def numpy_transfer(model) -> PoolTransfer | None:
    """The model's test-time graph transfer on numpy arrays (a protocol's trials from one
    neighbour search, `PoolTransfer`), or None for a model without one."""
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if not hasattr(module, "transfer_test_features"):
        return None

    def transfer(gallery: np.ndarray, queries: np.ndarray, branch: str):
        g, q = module.transfer_test_features(torch.from_numpy(gallery), torch.from_numpy(queries),
                                             branch)
        return g.cpu().numpy(), q.cpu().numpy()

    return PoolTransfer(transfer, module.graph, module.test_transfer,
                        lambda branch: module.projections[branch], module.device)


class CIFTTrainer(EpochLoop, DefaultTrainer):
    """Builds the same objects as DefaultTrainer (model, optimizer with heads x
    HEADS_LR_FACTOR, checkpointer, hooks), with epochs drawn by the sampler (each of its own
    length, `EpochLoop`), the LR a function of the epoch (`schedule.lr_factor`) and resumable
    epochs (`resume`: per-epoch seeding, run state in the checkpoint)."""

    def __init__(self, cfg):
        # DefaultTrainer.__init__ cannot be reused: it starts an iterator over the train loader
        # (the cross-modality sampler's loader gets one per epoch), sizes epochs as len(train
        # set) // batch, builds fastreid's iteration LR scheduler and a plain checkpointer, and
        # registers hooks built from those. Its steps are taken here in the same order, each
        # object built by an overridable build_* method.
        TrainerBase.__init__(self)
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            setup_logger()
        check_schedule(cfg)
        data_loader = self.build_train_loader(cfg)
        cfg = self.auto_scale_hyperparams(cfg, data_loader.dataset.num_classes)
        self.cfg = cfg
        self.sampler = epoch_sampler(data_loader)
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.set_epoch_lengths(data_loader)
        model = self.build_model(cfg)
        optimizer, param_wrapper = self.build_optimizer(cfg, model)
        model = self.build_distributed_model(model)
        attach_step_trainer(self, self.build_step_trainer(cfg, model, data_loader, optimizer,
                                                          param_wrapper, self.sampler))
        self.scheduler = self.build_epoch_lr_scheduler(cfg, optimizer)
        self.run_state = self.build_run_state(cfg)
        self.checkpointer = self.build_checkpointer(cfg, model, optimizer)
        self.start_epoch = 0
        logger.info(describe_epoch_lengths(self.epoch_lengths))
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_distributed_model(cls, model: torch.nn.Module) -> torch.nn.Module:
        """`model` wrapped in DistributedDataParallel (on this process's GPU, or the CPU) in a
        job of several processes, as it is otherwise."""
        if comm.get_world_size() <= 1:
            return model
        return distributed_data_parallel(model, device_ids=[comm.get_local_rank()],
                                         broadcast_buffers=False)

    @classmethod
    def build_step_trainer(cls, cfg, model, data_loader, optimizer, param_wrapper,
                           sampler=None) -> SimpleTrainer:
        """fastreid's SimpleTrainer (cift's AutocastTrainer with SOLVER.AMP.ENABLED: bfloat16
        where supported, see cift.engine.amp), which runs each step. With an epoch-drawn loader
        (`sampler` not None) it gets no iterator: the train loop starts one per epoch. A loss
        that is not finite stops it (`step_guards`)."""
        loader = [] if sampler is not None else data_loader
        if cfg.SOLVER.AMP.ENABLED:
            step = AutocastTrainer(model, loader, optimizer, param_wrapper,
                                   torch.device(cfg.MODEL.DEVICE))
        else:
            step = SimpleTrainer(model, loader, optimizer, param_wrapper)
        step.data_loader = data_loader
        return guard_finite_loss(step)

    @classmethod
    def build_epoch_lr_scheduler(cls, cfg, optimizer) -> EpochLRScheduler:
        """The LR as a function of the epoch (in place of fastreid's build_lr_scheduler)."""
        return EpochLRScheduler(cfg, optimizer)

    @classmethod
    def build_run_state(cls, cfg) -> RunState:
        """The run seed (SEED, or one shared by every rank when SEED < 0), the per-GPU batch
        and the world size, saved in every checkpoint."""
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
        return RunState(seed, cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size(),
                        comm.get_world_size())

    def build_checkpointer(self, cfg, model, optimizer) -> AtomicCheckpointer:
        """Saves (main process) the model, optimizer, run state, the sampler's state and AMP's
        grad scaler, each file written atomically."""
        checkpointables = {"optimizer": optimizer, "run_state": self.run_state}
        if self.sampler is not None:
            checkpointables["sampler"] = self.sampler
        if self.grad_scaler is not None:
            checkpointables["grad_scaler"] = self.grad_scaler
        return AtomicCheckpointer(model, cfg.OUTPUT_DIR, save_to_disk=comm.is_main_process(),
                                  **checkpointables)

    def resume_or_load(self, resume: bool = True) -> None:
        """fastreid's resume_or_load, plus: the per-GPU batch must be the checkpoint's, the
        sampler and run seeds come back, and so do a mid-epoch checkpoint's position and this
        rank's generator states (`cift.engine.resume`). (metrics.json loses the records written
        after the checkpoint when training starts: EpochLoop.train.)"""
        resuming = resume and self.checkpointer.has_checkpoint()
        if resuming:
            check_resume(self.cfg, comm.get_world_size())
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if not resuming:
            return
        check_resumed_shapes(self.model, self.checkpointer.loaded_state,
                             self.checkpointer.get_checkpoint_file())
        self.start_epoch = checkpoint.get("epoch", -1) + 1
        self.start_step = int(checkpoint.get("step") or 0)
        states = checkpoint.get("rng")
        self.resumed_rng = states[comm.get_rank()] if self.start_step and states else None
        if self.sampler is not None:  # its seed may have come back from the checkpoint
            self.set_epoch_lengths(self.data_loader)

    def build_hooks(self) -> list:
        """fastreid's hooks with the epoch LR schedule in place of its LRScheduler hook; every
        evaluation reaches metrics.json and tensorboard (see cift.engine.hooks), written every
        SOLVER.LOG_PERIOD iterations and at epoch ends; last, the console's progress display."""
        ret = with_cift_hooks(super().build_hooks(), self.scheduler, self.cfg)
        topology = build_topology_hook(self.cfg, self.model)
        if topology is not None:
            # right after the evaluation (same period), before the checkpointer and writers
            at = next(i for i, h in enumerate(ret) if isinstance(h, hooks.EvalHook)) + 1
            ret.insert(at, topology)
        return ret + [TrainingProgress()]  # the console's header and progress display

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
        test-time transfer. With TEST.SAVE_FEATURES the evaluator writes the features file."""
        loader, num_query, data = build_vi_test_loader(cfg, dataset_name)
        items = data.query + data.gallery
        tasks = build_tasks(cfg, data.protocol, items, num_query)
        return loader, VIEvaluator(cfg, items, tasks, transfer=numpy_transfer(model),
                                   save_features=features_sink(cfg, dataset_name, data, items,
                                                               num_query))

    @classmethod
    def test(cls, cfg, model) -> OrderedDict:
        """Evaluate on every DATASETS.TESTS entry and print the protocol tables (main process).

        Results are keyed by data set name, or are that data set's metrics when there is only
        one: the `metric` / `<first test set>/metric` key fastreid's checkpointer looks for.
        """
        results, curves = OrderedDict(), OrderedDict()
        for name in cfg.DATASETS.TESTS:
            loader, evaluator = cls.build_evaluator(cfg, name, model=model)
            with with_backbone_features(model, enabled=evaluator.save_features is not None):
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

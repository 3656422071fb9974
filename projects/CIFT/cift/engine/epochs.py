"""The training loop of CIFTTrainer: epochs of their own lengths, each started from generators
seeded by (run seed, epoch, rank) and, for the cross-modality sampler, a new iterator over the
batches it draws for that epoch.

fastreid's loop runs a fixed number of iterations per epoch over one infinite iterator; the
cross-modality sampler draws each epoch anew, and the length of its draw varies (the authors'
sampler), so the loop asks it for every epoch's length (:func:`epoch_lengths`).
"""
from __future__ import annotations

import logging

from fastreid.utils import comm
from fastreid.utils.events import EventStorage

from ..fastreid_private import last_eval_results, set_data_iterator, step_trainer
from .resume import seed_epoch

logger = logging.getLogger(__name__)


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


def describe_epoch_lengths(lengths: list[int]) -> str:
    """One log line: the shortest, mean and longest epoch and the iterations in all."""
    if not lengths:
        return "no epochs to train"
    return (f"iterations per epoch: min {min(lengths)}, mean {sum(lengths) / len(lengths):.1f}, "
            f"max {max(lengths)}; {sum(lengths)} in all")


class EpochLoop:
    """`train()` for a fastreid DefaultTrainer subclass (listed before DefaultTrainer), over
    epochs of their own lengths. The trainer provides `cfg`, `data_loader`, `sampler` (from
    :func:`epoch_sampler`), `run_state` (its seed), `max_epoch` and `start_epoch`; the loop
    keeps `epoch_lengths`, `max_iter`, `epoch` and `epoch_start_iter` for the hooks."""

    def set_epoch_lengths(self, data_loader) -> None:
        """`epoch_lengths` and `max_iter` of the train loader, its sampler as it is now (its seed
        may have come back from a checkpoint)."""
        self.epoch_lengths = epoch_lengths(self.cfg, data_loader, self.max_epoch)
        self.max_iter = sum(self.epoch_lengths)

    def train(self):
        """fastreid's loop with epochs of their own lengths (:meth:`run_epoch`). Returns the
        last evaluation's results (main process)."""
        if self.start_epoch >= self.max_epoch:
            logger.info(f"{self.cfg.OUTPUT_DIR}: the run is complete ({self.start_epoch} of "
                        f"{self.max_epoch} epochs trained); nothing to resume")
            return None
        self.iter = self.start_iter = sum(self.epoch_lengths[: self.start_epoch])
        logger.info(f"Starting training from epoch {self.start_epoch}")
        with EventStorage(self.start_iter) as self.storage:
            try:
                self.before_train()
                for epoch in range(self.start_epoch, self.max_epoch):
                    self.epoch = epoch  # hooks read the trainer's epoch, as in fastreid's loop
                    self.run_epoch(epoch)
            except Exception:
                logger.exception("Exception during training:")
                raise
            finally:
                self.after_train()
        return last_eval_results(self) if comm.is_main_process() else None

    def run_epoch(self, epoch: int) -> None:
        """One epoch: `begin_epoch`, the hooks' before_epoch, `epoch_lengths[epoch]` steps, the
        end of an epoch-drawn loader's iterator, the hooks' after_epoch."""
        self.epoch_start_iter = self.iter
        self.begin_epoch(epoch)
        self.before_epoch()
        for _ in range(self.epoch_lengths[epoch]):
            self.before_step()
            self.run_step()
            self.after_step()
            self.iter += 1
        if self.sampler is not None:
            set_data_iterator(step_trainer(self), None)  # ends this epoch's workers
        self.after_epoch()

    def begin_epoch(self, epoch: int) -> None:
        """Seed every generator for `epoch` and, for an epoch-drawn loader, start the
        iterator over its batches (the train loop calls it before each epoch)."""
        generator = seed_epoch(self.run_state.seed, epoch, comm.get_rank())
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, 1)
            self.data_loader.generator = generator  # the workers' seeds follow the epoch
            set_data_iterator(step_trainer(self), iter(self.data_loader))

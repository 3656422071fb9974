"""The training loop of CIFTTrainer: epochs of their own lengths, each started from generators
seeded by (run seed, epoch, rank) and, for the cross-modality sampler, a new iterator over the
batches it draws for that epoch.

fastreid's loop runs a fixed number of iterations per epoch over one infinite iterator; the
cross-modality sampler draws each epoch anew, and the length of its draw varies (the authors'
sampler), so the loop asks it for every epoch's length (:func:`epoch_lengths`).

The loop also stops cleanly: on SIGINT / SIGTERM (`cift.engine.interrupt`) after the current
iteration, with a checkpoint from which `--resume` continues bit-identically (mid-epoch
included: `cift.engine.resume`), and on a loss that is not finite (`cift.engine.step_guards`)
without writing anything of that iteration. A run stopped early does not evaluate.
"""
from __future__ import annotations

import logging
import signal

from fastreid.engine import hooks
from fastreid.utils import comm
from fastreid.utils.events import EventStorage

from ..analysis.hooks import TopologyHook
from ..errors import CiftInputError, CiftJobError
from ..fastreid_private import last_eval_results, set_data_iterator, step_trainer
from .checkpoint import INTERRUPTED_NAME
from .interrupt import STOP, Interrupted, signal_name
from .resume import restore_rng_state, rng_state, seed_epoch, truncate_metrics
from .step_guards import NonFiniteLoss, any_process

logger = logging.getLogger(__name__)

# Hooks a run stopped early skips at its end: they evaluate the model of a completed training.
EVALUATING_HOOKS = (hooks.EvalHook, TopologyHook)


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
    :func:`epoch_sampler`), `run_state` (its seed), `checkpointer`, `max_epoch` and
    `start_epoch`, and for a mid-epoch resume `start_step` and `resumed_rng` (this rank's
    generator states); the loop keeps `epoch_lengths`, `max_iter`, `epoch` and
    `epoch_start_iter` for the hooks."""

    start_step = 0
    resumed_rng: dict | None = None

    def set_epoch_lengths(self, data_loader) -> None:
        """`epoch_lengths` and `max_iter` of the train loader, its sampler as it is now (its seed
        may have come back from a checkpoint)."""
        self.epoch_lengths = epoch_lengths(self.cfg, data_loader, self.max_epoch)
        self.max_iter = sum(self.epoch_lengths)

    def train(self):
        """fastreid's loop with epochs of their own lengths (:meth:`run_epoch`), from
        `start_epoch` / `start_step`. Returns the last evaluation's results (main process).

        Raises:
            Interrupted: SIGINT / SIGTERM (after a checkpoint, see :meth:`stop_if_requested`).
            NonFiniteLoss: a step's loss was not finite (nothing of that step is written).
        """
        if self.start_epoch >= self.max_epoch:
            logger.info(f"{self.cfg.OUTPUT_DIR}: the run is complete ({self.start_epoch} of "
                        f"{self.max_epoch} epochs trained); nothing to resume")
            return None
        self.epoch_start_iter = sum(self.epoch_lengths[: self.start_epoch])
        self.iter = self.start_iter = self.epoch_start_iter + self.start_step
        self.stopped: BaseException | None = None
        if comm.is_main_process():
            dropped = truncate_metrics(self.cfg.OUTPUT_DIR, self.start_iter)
            if dropped:
                logger.info(f"metrics.json: dropped {dropped} records from iteration "
                            f"{self.start_iter} on (written after the last checkpoint)")
        logger.info(f"Starting training from epoch {self.start_epoch}"
                    + (f", iteration {self.start_step} of it" if self.start_step else ""))
        with EventStorage(self.start_iter) as self.storage, STOP.deferred():
            try:
                self.before_train()
                for epoch in range(self.start_epoch, self.max_epoch):
                    self.epoch = epoch  # hooks read the trainer's epoch, as in fastreid's loop
                    self.run_epoch(epoch, self.start_step if epoch == self.start_epoch else 0)
            except NonFiniteLoss as err:
                self.stopped = err
                last = self.last_checkpoint_name()
                kept = (f"the last checkpoint stays {last}" if last != "none"
                        else "no checkpoint was written")
                raise NonFiniteLoss(f"{err}; nothing of it was written, and {kept} (lower "
                                    "SOLVER.BASE_LR, or check the inputs)") from None
            except BaseException as err:
                self.stopped = err
                if not isinstance(err, (CiftInputError, CiftJobError, KeyboardInterrupt)):
                    logger.exception("Exception during training:")
                raise
            finally:
                self.end_hooks()
        return last_eval_results(self) if comm.is_main_process() else None

    def end_hooks(self) -> None:
        """The hooks' after_train; after a run stopped early only those that do not evaluate,
        and an error of theirs is logged, not raised over the one that stopped the run."""
        if self.stopped is None:
            self.after_train()
            return
        self.storage.iter = max(self.iter - 1, 0)  # the last iteration done, not the next
        for hook in self._hooks:
            if isinstance(hook, EVALUATING_HOOKS):
                continue
            try:
                hook.after_train()
            except Exception as err:  # noqa: BLE001  the first error is the one to report
                logger.warning(f"{type(hook).__name__} could not finish: {err}")

    def run_epoch(self, epoch: int, first_step: int = 0) -> None:
        """One epoch from step `first_step`: `begin_epoch`, the hooks' before_epoch, the steps,
        the end of an epoch-drawn loader's iterator, the hooks' after_epoch. A stop requested
        by a signal is honoured before the epoch and between its steps (the epoch's end, with
        its evaluation and checkpoint, runs whole)."""
        self.epoch_start_iter = self.iter - first_step
        self.stop_if_requested(epoch, first_step)
        self.begin_epoch(epoch, first_step)
        self.before_epoch()
        if first_step and self.resumed_rng is not None:
            restore_rng_state(self.resumed_rng)  # after the replayed batches (begin_epoch)
        length = self.epoch_lengths[epoch]
        for step in range(first_step, length):
            self.before_step()
            self.run_step()
            self.after_step()
            self.iter += 1
            if step + 1 < length:
                self.stop_if_requested(epoch, step + 1)
        if self.sampler is not None:
            set_data_iterator(step_trainer(self), None)  # ends this epoch's workers
        self.after_epoch()

    def begin_epoch(self, epoch: int, first_step: int = 0) -> None:
        """Seed every generator for `epoch` and, for an epoch-drawn loader, start the
        iterator over its batches (the train loop calls it before each epoch). Resuming at
        `first_step`, the iterator first yields the epoch's earlier batches again, unused."""
        generator = seed_epoch(self.run_state.seed, epoch, comm.get_rank())
        if self.sampler is None:
            return
        self.sampler.set_epoch(epoch, 1)
        self.data_loader.generator = generator  # the workers' seeds follow the epoch
        iterator = iter(self.data_loader)
        if first_step < self.epoch_lengths[epoch]:  # else no batch of this epoch is left
            for _ in range(first_step):
                next(iterator)
        set_data_iterator(step_trainer(self), iterator)

    def stop_if_requested(self, epoch: int, step: int) -> None:
        """When a signal asked any process to stop: write a checkpoint at (`epoch`, `step`:
        steps done in it), unless the last one is there, and raise Interrupted. A collective
        in a job of several processes (they stop at the same step)."""
        device = next(self.model.parameters()).device
        if not any_process(STOP.requested is not None, device):
            return
        signum = STOP.requested or signal.SIGTERM  # the signal may have reached rank 0 only
        where = (f"before iteration {self.iter} (epoch {epoch}, {step} of its "
                 f"{self.epoch_lengths[epoch]} iterations done)")
        logger.warning(f"{signal_name(signum)} received: stopping {where}")
        kept = self.save_interrupted(epoch, step)
        raise Interrupted(signum, f"{signal_name(signum)}: stopped {where}; {kept}; continue "
                                  "with --resume")

    def save_interrupted(self, epoch: int, step: int) -> str:
        """Checkpoint (`epoch`, `step`) as `model_interrupted.pth`, after writing the records of
        every iteration done (so that a checkpoint never names an iteration metrics.json
        lacks), unless the last checkpoint is at that position; says which one holds it."""
        if (epoch, step) == (self.start_epoch, self.start_step):
            return "nothing was trained since this run started, so no checkpoint was written"
        if step == 0 and self.checkpointed_after(epoch - 1):
            return f"the last checkpoint, {self.last_checkpoint_name()}, holds this state"
        rng = comm.gather(rng_state())  # every rank: its generators mid-epoch
        if not comm.is_main_process():
            comm.synchronize()
            return "rank 0 wrote the checkpoint"
        self.write_metrics()
        self.checkpointer.save(INTERRUPTED_NAME, epoch=epoch - 1, step=step,
                               rng=rng if step else None)
        comm.synchronize()
        return f"checkpoint written: {self.last_checkpoint_name()}"

    def checkpointed_after(self, epoch: int) -> bool:
        """Whether the end of `epoch` wrote a checkpoint (fastreid's PeriodicCheckpointer: every
        SOLVER.CHECKPOINT_PERIOD epochs and after the last); known on every rank, although only
        rank 0 writes."""
        period = self.cfg.SOLVER.CHECKPOINT_PERIOD
        return epoch >= 0 and (period > 0 and (epoch + 1) % period == 0
                               or epoch >= self.max_epoch - 1)

    def write_metrics(self) -> None:
        """Write what the writers have not written yet (metrics.json, tensorboard)."""
        for hook in self._hooks:
            if isinstance(hook, hooks.PeriodicWriter):
                hook.after_epoch()  # writes every writer

    def last_checkpoint_name(self) -> str:
        """The path of the run's last checkpoint, or 'none'."""
        c = self.checkpointer
        return c.get_checkpoint_file() if c.has_checkpoint() else "none"

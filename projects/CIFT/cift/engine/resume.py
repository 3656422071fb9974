"""What makes `--resume` repeat the uninterrupted run: per-epoch seeding, the run state a
checkpoint carries, and the checks and clean-up done when resuming.

Every epoch starts by seeding python's, numpy's and torch's generators (CPU and CUDA) and the
train loader's workers from ``(run seed, epoch, rank)`` alone (:func:`epoch_seeds`), and the
sampler's draw of an epoch is a function of ``(sampler seed, epoch)``. A run resumed from the
checkpoint written at the end of epoch ``k`` therefore starts epoch ``k + 1`` in exactly the
state the uninterrupted run had there, on every rank, although only rank 0 writes checkpoints
(per-rank generator states could not be saved without a collective in the checkpoint hook).
The checkpoint carries the seeds (:class:`RunState`, so runs with ``SEED -1`` resume too) and the
per-GPU batch size, which CIFT's CRI parameters are shaped by.

Not covered: fastreid's own training samplers (DATALOADER.SAMPLER_TRAIN other than the
cross-modality sampler) restart their infinite stream from their seed, and on a GPU with
DATALOADER.NUM_WORKERS 0 fastreid's prefetching thread runs the train transforms concurrently
with the model, both drawing from torch's generator.
"""
from __future__ import annotations

import json
import logging
import os
import random

import numpy as np
import torch

from ..errors import CiftInputError
from .checkpoint import SAFE_GLOBALS, mismatch_message

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def epoch_seeds(seed: int, epoch: int, rank: int) -> tuple[int, int]:
    """(generator seed, loader seed) of ``epoch`` on ``rank``: two 32-bit words of numpy's
    SeedSequence of ``[seed, epoch, rank]`` (independent streams for every triple)."""
    words = np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(2)
    return int(words[0]), int(words[1])


def seed_epoch(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Seed python, numpy and torch (every CUDA device too) for ``epoch`` and return the
    generator the train loader draws its workers' base seed from (worker ``w`` then seeds its
    own python / numpy / torch generators from ``base + w``, torch's default)."""
    generator_seed, loader_seed = epoch_seeds(seed, epoch, rank)
    random.seed(generator_seed)
    np.random.seed(generator_seed)
    torch.manual_seed(generator_seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(loader_seed)


class RunState:
    """Checkpointable: the run seed, the per-GPU batch size and the world size of a run."""

    def __init__(self, seed: int, batch_size: int, world_size: int) -> None:
        self.seed, self.batch_size, self.world_size = int(seed), int(batch_size), int(world_size)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])  # sizes are checked before loading (check_resume)


def last_checkpoint(output_dir: str) -> str:
    """The file `output_dir/last_checkpoint` names, or "" when there is none."""
    tag = os.path.join(output_dir, "last_checkpoint")
    if not output_dir or not os.path.isfile(tag):
        return ""
    with open(tag) as f:
        return os.path.join(output_dir, f.read().strip())


def saved_run_state(path: str) -> dict[str, int] | None:
    """The RunState saved in checkpoint `path` (memory-mapped, weights-only read), or None when
    the file holds none or cannot be read that way (the trainer's load then reports it)."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  any unreadable file is reported by the real load
        return None
    state = content.get("run_state") if isinstance(content, dict) else None
    return state if isinstance(state, dict) else None


def check_resume(cfg, world_size: int) -> None:
    """Before a `--resume`: refuse a per-GPU batch size other than the checkpoint's (CRI's
    parameters and their optimizer state are shaped by it) in one line naming both sizes."""
    path = last_checkpoint(cfg.OUTPUT_DIR)
    state = saved_run_state(path) if path and os.path.isfile(path) else None
    if state is None:
        return
    batch = cfg.SOLVER.IMS_PER_BATCH // world_size
    if batch != state["batch_size"]:
        raise CiftInputError(
            f"--resume: SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} on {world_size} "
            f"process(es) gives {batch} images per GPU, but {path} was trained with "
            f"{state['batch_size']} per GPU (SOLVER.IMS_PER_BATCH "
            f"{state['batch_size'] * state['world_size']} on {state['world_size']}); resume with "
            "that batch size or train into a new OUTPUT_DIR")


def check_resumed_shapes(model, loaded: dict[str, torch.Tensor], path: str) -> None:
    """After loading a checkpoint to resume: parameters of another shape (an older checkpoint
    without a RunState, trained with another batch size) cannot resume; one line naming them."""
    own = model.state_dict()
    shapes = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in loaded.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if shapes:
        raise CiftInputError("--resume: " + mismatch_message(path, [], [], shapes)
                             + " (CRI parameters have one row per image of the per-GPU batch: "
                             "was SOLVER.IMS_PER_BATCH changed?)")


def truncate_metrics(output_dir: str, start_iter: int) -> int:
    """Drop the records of `output_dir/metrics.json` from iteration `start_iter` on (left by a
    run killed after its last checkpoint, which the resumed run writes again); returns how many.

    The file is cut in place (one `truncate`) so that a writer holding it open in append mode
    goes on writing at its new end.
    """
    path = os.path.join(output_dir, METRICS_FILE)
    if not output_dir or not os.path.isfile(path):
        return 0
    offset, cut, dropped = 0, None, 0
    with open(path, "rb") as f:
        for line in f:
            try:
                iteration = int(json.loads(line).get("iteration", -1))
            except (ValueError, AttributeError, TypeError):
                iteration = start_iter  # a line torn by the kill goes too
            if iteration >= start_iter:
                cut = offset if cut is None else cut
                dropped += 1
            offset += len(line)
    if cut is not None:
        os.truncate(path, cut)
    return dropped

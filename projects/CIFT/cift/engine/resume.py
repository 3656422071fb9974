"""What makes `--resume` repeat the uninterrupted run: per-epoch seeding, the run state a
checkpoint carries, and the checks and clean-up done when resuming.

Every epoch starts by seeding python's, numpy's and torch's generators (CPU and CUDA) and the
train loader's workers from ``(run seed, epoch, rank)`` alone (:func:`epoch_seeds`), and the
sampler's draw of an epoch is a function of ``(sampler seed, epoch)``. A run resumed from the
checkpoint written at the end of epoch ``k`` therefore starts epoch ``k + 1`` in exactly the
state the uninterrupted run had there, on every rank. The checkpoint carries the seeds
(:class:`RunState`, so runs with ``SEED -1`` resume too) and the per-GPU batch size, which
CIFT's CRI parameters are shaped by.

Mid-epoch (a run stopped by a signal after step ``j`` of epoch ``e``, `cift.engine.interrupt`):
the checkpoint also holds ``step = j`` and every rank's generator states
(:func:`rng_state`, gathered to rank 0). The resumed run seeds epoch ``e`` as usual, draws the
first ``j`` batches of its loader again without training on them (so the loader's workers,
whose generators advance with every image they transform, are where the uninterrupted run's
were) and then restores the generator states: step ``j`` onwards repeat the uninterrupted run.

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
from .checkpoint import INFERENCE_UNUSED, SAFE_GLOBALS, build_check_model, mismatch_message

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


def rng_state() -> dict:
    """This process's python, numpy and torch (CPU and CUDA) generator states, as tensors and
    numbers (a checkpoint read with weights_only=True holds them)."""
    _, python, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    return {"python": torch.tensor(python, dtype=torch.int64), "python_gauss": gauss,
            "numpy": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "numpy_pos": int(numpy["state"]["pos"]), "numpy_has_gauss": int(numpy["has_gauss"]),
            "numpy_gauss": float(numpy["gauss"]), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_state(state: dict) -> None:
    """Put back the generator states :func:`rng_state` took."""
    random.setstate((3, tuple(state["python"].tolist()), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunState:
    """Checkpointable: the run seed, the per-GPU batch size and the world size of a run."""

    def __init__(self, seed: int, batch_size: int, world_size: int) -> None:
        self.seed, self.batch_size, self.world_size = int(seed), int(batch_size), int(world_size)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])  # sizes are checked before loading (check_resume)


def last_checkpoint(output_dir: str) -> str:
    """The file `output_dir/last_checkpoint` names, or "" when there is none; CiftInputError
    when the tag is not UTF-8 or the file it names does not exist."""
    tag = os.path.join(output_dir, "last_checkpoint")
    if not output_dir or not os.path.isfile(tag):
        return ""
    with open(tag, "rb") as f:
        name = f.read().strip()
    try:
        path = os.path.join(output_dir, name.decode("utf-8"))
    except UnicodeDecodeError:
        raise CiftInputError(f"{tag}: not a checkpoint name (not UTF-8 text)") from None
    if not os.path.isfile(path):
        raise CiftInputError(f"--resume: {path}: checkpoint file not found (named by {tag})")
    return path


def saved_checkpoint(path: str) -> dict | None:
    """The content of checkpoint `path` (memory-mapped, weights-only read), or None when it
    cannot be read that way (the trainer's load then reports it)."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  any unreadable file is reported by the real load
        return None
    return content if isinstance(content, dict) else None


def saved_run_state(path: str) -> dict[str, int] | None:
    """The RunState saved in checkpoint `path`, or None when the file holds none or cannot be
    read (:func:`saved_checkpoint`)."""
    state = (saved_checkpoint(path) or {}).get("run_state")
    return state if isinstance(state, dict) else None


def check_resume(cfg, world_size: int, num_classes: int | None = None) -> None:
    """Before a `--resume`: refuse a per-GPU batch size other than the checkpoint's (CRI's
    parameters and their optimizer state are shaped by it) in one line naming both sizes, and,
    with `num_classes` (the training identities), a checkpoint whose model is not the config's
    (another backbone depth, another data set) in one line naming what differs."""
    path = last_checkpoint(cfg.OUTPUT_DIR)
    content = saved_checkpoint(path) if path else None
    state = (content or {}).get("run_state")
    if isinstance(state, dict):
        batch = cfg.SOLVER.IMS_PER_BATCH // world_size
        if batch != state["batch_size"]:
            raise CiftInputError(
                f"--resume: SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} on {world_size} "
                f"process(es) gives {batch} images per GPU, but {path} was trained with "
                f"{state['batch_size']} per GPU (SOLVER.IMS_PER_BATCH "
                f"{state['batch_size'] * state['world_size']} on {state['world_size']}); resume "
                "with that batch size or train into a new OUTPUT_DIR")
        if (content or {}).get("step", 0) and state["world_size"] != world_size:
            raise CiftInputError(
                f"--resume: {path} was written mid-epoch by a job of {state['world_size']} "
                f"process(es), and a mid-epoch position holds for that number only; resume "
                f"with {state['world_size']}")
    if num_classes is not None and isinstance((content or {}).get("model"), dict):
        check_resumed_model(cfg, content["model"], path, num_classes)


def check_resumed_model(cfg, saved: dict[str, torch.Tensor], path: str, num_classes: int
                        ) -> None:
    """The checkpoint's model tensors are those of the model `cfg` builds with `num_classes`
    classes, shape for shape (CRI's, shaped by the per-GPU batch, are checked with the batch)."""
    own = build_check_model(cfg, num_classes).state_dict()
    saved = {k[len("module."):] if k.startswith("module.") else k: v for k, v in saved.items()}

    def kept(names):
        return sorted(n for n in names if not n.startswith(INFERENCE_UNUSED))

    missing = kept(set(own) - set(saved))
    unexpected = kept(set(saved) - set(own))
    shapes = [(k, tuple(saved[k].shape), tuple(own[k].shape)) for k in kept(set(own) & set(saved))
              if tuple(saved[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise CiftInputError("--resume: " + mismatch_message(path, missing, unexpected, shapes)
                             + "; resume with the config it was trained with, or train into a "
                             "new OUTPUT_DIR")


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

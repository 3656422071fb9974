"""fastreid's Checkpointer with atomic writes and loading that never unpickles code.

Weights come from `.safetensors` files (tensors only, by construction) or from `.pth` files read
with `torch.load(weights_only=True)`. A file that needs arbitrary unpickling is refused with one
line naming it, unless the caller trusts it (`trust=True`, the `--trust-checkpoint` flag).
"""
from __future__ import annotations

import collections
import os
import pickle
import re
from typing import Any

import torch
from fastreid.utils.checkpoint import (
    Checkpointer,
    _filter_reused_missing_keys,
    _strip_prefix_if_present,
)

from ..atomic import atomic_write
from ..errors import CiftInputError, CiftJobError, name_list

# Non-tensor types that fastreid's checkpoints legitimately hold (MultiStepLR milestones).
SAFE_GLOBALS = [collections.Counter]
SAFETENSORS_SUFFIX = ".safetensors"
# Names listed per kind of mismatch in the one-line error.
MAX_NAMES = 5
# Parameters that inference never uses and whose shape may differ between the training job
# and a later one: CIFT's counterfactual nodes, one per position of the per-GPU training batch
# (so shaped by the training job's world size). Strict loading only warns about them.
INFERENCE_UNUSED = ("cri.",)
# Name of the checkpoint a run writes when a signal stops it mid-epoch (cift.engine.interrupt);
# the run's next regular checkpoint replaces it.
INTERRUPTED_NAME = "model_interrupted"


def first_non_finite(state: dict[str, Any]) -> tuple[str, int] | None:
    """(name of the first floating-point tensor of `state` holding NaN or ±inf, how many such
    tensors there are), or None when every one is finite."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor)
           and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    return (bad[0], len(bad)) if bad else None


def fitting_names(model_state: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Names of `state` that the model has, with the same shape (what loading it fills)."""
    return [k for k, v in state.items()
            if k in model_state and tuple(v.shape) == tuple(model_state[k].shape)]


def name_groups(names: list[str], depth: int = 2) -> list[str]:
    """'prefix (count)' for the first `depth` dotted parts of `names`, in order of appearance,
    e.g. ['backbone.layer4 (30)', 'heads.classifier (1)']."""
    counts = collections.Counter(".".join(n.split(".")[:depth]) for n in names)
    return [f"{group} ({count})" for group, count in counts.items()]


class NonFiniteState(CiftJobError):
    """The model holds NaN or ±inf values: it is not saved (the last good checkpoint stays)."""


def is_safetensors_file(path: str) -> bool:
    """A `.safetensors` name, or safetensors content under another name (an 8-byte
    little-endian header length, then the JSON header)."""
    if path.endswith(SAFETENSORS_SUFFIX):
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return (len(head) == 9 and head[8:9] == b"{"
            and int.from_bytes(head[:8], "little") < os.path.getsize(path))


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _unsafe_detail(err: BaseException) -> str:
    """What torch's weights-only unpickler stopped at, e.g. 'GLOBAL __main__.Foo'."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"GLOBAL {found.group(1)}"
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and "Weights only load failed" not in line]
    return next((line for line in lines if line.startswith(("Unsupported", "Trying"))),
                lines[-1] if lines else type(err).__name__)


def load_checkpoint_file(path: str, trust: bool = False) -> dict[str, Any]:
    """The content of a checkpoint file, without running code from it (unless `trust`).

    `.safetensors` (by name or content): {name: tensor}. Otherwise `torch.load` with
    `weights_only=True` (tensors, plain containers and SAFE_GLOBALS); with `trust=True`,
    `weights_only=False`, which can run arbitrary code stored in the file.

    Raises:
        CiftInputError: naming the file, when it is missing, truncated or corrupt, or holds
            objects that only arbitrary unpickling restores (and `trust` is False).
    """
    if not os.path.isfile(path):
        raise CiftInputError(f"{path}: checkpoint file not found")
    if is_safetensors_file(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CiftInputError(f"{path}: not a readable .safetensors file (truncated or "
                                 f"corrupt? {_first_line(err)})") from None
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (or, before torch 1.6, a pickle: protocol byte 0x80);
    # a shorter file is a truncated one, reported below
    if len(head) == 4 and not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise CiftInputError(f"{path}: not a checkpoint (neither a torch.save archive nor a "
                             ".safetensors file)")
    try:
        if trust:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if trust or "Weights only load failed" not in str(err):
            raise CiftInputError(f"{path}: not a readable checkpoint (truncated or corrupt? "
                                 f"{_first_line(err)})") from None
        raise CiftInputError(
            f"{path}: refused: it holds pickled objects ({_unsafe_detail(err)}) that only "
            "arbitrary unpickling can load, which can run code from the file; use a "
            "weights-only .pth or .safetensors file, or pass --trust-checkpoint if you trust "
            "its source") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, ImportError) as err:
        raise CiftInputError(f"{path}: not a readable checkpoint (truncated or corrupt? "
                             f"{_first_line(err)})") from None


def load_weights_only(path: str) -> dict[str, Any]:
    """torch.load restricted to tensors and plain containers (no code from the file runs);
    a `.safetensors` file gives its tensors."""
    return load_checkpoint_file(path, trust=False)


def checkpoint_with_model(content: Any, path: str) -> dict[str, Any]:
    """fastreid's checkpoint layout {"model": state dict, ...} from a file's content: a
    training checkpoint as it is, a bare state dict (a .safetensors file) under "model"."""
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        return content
    if isinstance(content, dict) and content and all(
            isinstance(v, torch.Tensor) for v in content.values()):
        return {"model": dict(content)}
    raise CiftInputError(f"{path}: holds no model weights (expected a state dict or a "
                         "checkpoint with a 'model' entry)")


def mismatch_message(path: str, missing: list[str], unexpected: list[str],
                     shapes: list[tuple]) -> str:
    """One line naming the parameters of a checkpoint that do not fit a model."""
    parts = []
    if shapes:
        listed = [f"{k} {tuple(a)} in the file, {tuple(b)} in the model" for k, a, b in shapes]
        parts.append(f"{len(shapes)} of another shape: {name_list(listed, MAX_NAMES)}")
    if missing:
        parts.append(f"{len(missing)} missing from the file: {name_list(missing, MAX_NAMES)}")
    if unexpected:
        parts.append(f"{len(unexpected)} not in the model: {name_list(unexpected, MAX_NAMES)}")
    return (f"{path}: does not fit the model built from the config (another architecture or "
            f"config?): {'; '.join(parts)}")


class AtomicCheckpointer(Checkpointer):
    """Writes `<name>.pth` and `last_checkpoint` atomically; loads `.safetensors` or `.pth`
    with `weights_only=True` (`trust=True` allows arbitrary unpickling).

    `strict=False` (training initialisation, fastreid's behaviour) loads what fits and logs
    every mismatched parameter by name; `strict=True` (evaluation, export, search) raises a
    CiftInputError naming them instead, except for names starting with one of `unused`
    (parameters inference never reads), which are only logged. After `load`, `loaded_state`
    holds the file's model tensors as they were (before any was skipped).
    """

    def __init__(self, model, save_dir: str = "", *, save_to_disk: bool = True,
                 strict: bool = False, trust: bool = False,
                 unused: tuple[str, ...] = INFERENCE_UNUSED, **checkpointables: Any):
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.strict = strict
        self.trust = trust
        self.unused = tuple(unused)
        self.loaded_state: dict[str, Any] = {}
        self._loading = ""

    def save(self, name: str, **kwargs: Any) -> None:
        """Write `<name>.pth` (model, checkpointables, `kwargs`) and tag it as the last
        checkpoint. A model holding NaN or ±inf is not written (NonFiniteState): the last good
        checkpoint stays the last one. A regular checkpoint replaces an interrupted run's."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        bad = first_non_finite(data["model"])
        if bad is not None:
            last = (f"the last good checkpoint is {self.get_checkpoint_file()}"
                    if self.has_checkpoint() else "there is no good checkpoint yet")
            raise NonFiniteState(
                f"the model holds NaN or inf values ({bad[0]}, {bad[1]} tensors in all) at "
                f"{name}.pth, which was not written; {last} (the loss or the learning rate ran "
                "away: see SOLVER.BASE_LR)")
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info(f"Saving checkpoint to {path}")
        atomic_write(path, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(f"{name}.pth")
        interrupted = os.path.join(self.save_dir, f"{INTERRUPTED_NAME}.pth")
        if name != INTERRUPTED_NAME and os.path.isfile(interrupted):
            os.remove(interrupted)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(path, lambda f: f.write(last_filename_basename.encode()))

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        if path and "://" not in path and not os.path.isfile(path):
            raise CiftInputError(f"{path}: checkpoint file not found")
        self._loading = path
        return super().load(path, checkpointables)

    def load_model_state(self, state: dict[str, Any], path: str) -> None:
        """Load a model state dict already read from `path` into the model, with the checks
        and messages of `load` (for a caller that has read the file for other reasons)."""
        self._loading = path
        self._log_incompatible_keys(self._load_model({"model": dict(state)}))

    def _load_file(self, f: str) -> dict[str, Any]:
        return checkpoint_with_model(load_checkpoint_file(f, trust=self.trust), f)

    def _load_model(self, checkpoint: Any):
        self.loaded_state = dict(checkpoint["model"])
        _strip_prefix_if_present(self.loaded_state, "module.")
        path = self._loading
        bad = first_non_finite(self.loaded_state)
        if bad is not None:
            raise CiftInputError(f"{path}: {bad[0]} holds NaN or inf values ({bad[1]} tensors "
                                 "in all); refusing to load weights that are not finite")
        own = self.model.state_dict()
        fit = fitting_names(own, self.loaded_state)
        if not fit and not self.strict:
            raise CiftInputError(
                f"{path}: none of its {len(self.loaded_state)} tensors fits the model built from "
                f"the config (0 of {len(own)} would load: another architecture, or the weights "
                "of another program?)")
        incompatible = super()._load_model(checkpoint)
        if not self.strict:
            if len(fit) < len(own):
                unfilled = [k for k in own if k not in set(fit)]
                self.logger.warning(
                    f"{path}: loaded {len(fit)} of the model's {len(own)} tensors; the others "
                    f"keep their initial values: {name_list(name_groups(unfilled), MAX_NAMES)}")
            return incompatible

        def fatal(names):
            return sorted(n for n in names if not n.startswith(self.unused))

        missing = fatal(_filter_reused_missing_keys(self.model, incompatible.missing_keys))
        unexpected = fatal(incompatible.unexpected_keys)
        shapes = [s for s in incompatible.incorrect_shapes if not s[0].startswith(self.unused)]
        if missing or unexpected or shapes:
            raise CiftInputError(mismatch_message(path, missing, unexpected, shapes))
        return incompatible


def build_check_model(cfg, num_classes: int) -> torch.nn.Module:
    """The model of `cfg` on the CPU with `num_classes` classes and no ImageNet download: what
    the input checks load a checkpoint into to see whether it fits."""
    from fastreid.modeling import build_model

    model_cfg = cfg.clone()
    model_cfg.defrost()
    model_cfg.MODEL.DEVICE = "cpu"
    model_cfg.MODEL.BACKBONE.PRETRAIN = False
    model_cfg.MODEL.HEADS.NUM_CLASSES = int(num_classes)
    model_cfg.freeze()
    return build_model(model_cfg)


def check_weights_file(cfg, path: str, *, eval_only: bool, trust: bool = False,
                       num_classes: int = 0) -> None:
    """MODEL.WEIGHTS `path` loads without running code, holds only finite values and fits the
    model of `cfg`: every tensor for an evaluation (`eval_only`, strict), at least one for a
    training initialisation (which loads what fits and logs the rest). `num_classes`: the
    training identities (an evaluation with MODEL.HEADS.NUM_CLASSES 0 counts the checkpoint's
    classifier rows instead)."""
    state = checkpoint_with_model(load_checkpoint_file(path, trust=trust), path)["model"]
    if eval_only:
        num_classes = cfg.MODEL.HEADS.NUM_CLASSES or num_classes_in_state(state, path)
    model = build_check_model(cfg, num_classes)
    AtomicCheckpointer(model, strict=eval_only).load_model_state(state, path)


def num_classes_in_checkpoint(path: str, trust: bool = False) -> int:
    """Number of training identities of a checkpoint (rows of its classifier weights)."""
    state = checkpoint_with_model(load_checkpoint_file(path, trust=trust), path)["model"]
    return num_classes_in_state(state, path)


def num_classes_in_state(state: dict[str, Any], path: str) -> int:
    """Rows of the classifier weights of a model state dict read from `path`."""
    rows = {v.shape[0] for k, v in state.items() if k.endswith("classifier.weight")}
    if len(rows) != 1:
        raise CiftInputError(f"{path}: cannot tell the number of classes from its classifiers")
    return rows.pop()


def add_trust_argument(parser) -> None:
    """The commands' shared --trust-checkpoint flag (argparse)."""
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a MODEL.WEIGHTS .pth that needs arbitrary unpickling (it can "
                             "run code from the file: only for files from a trusted source)")

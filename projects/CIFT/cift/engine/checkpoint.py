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
from ..errors import CiftInputError, name_list

# Non-tensor types that fastreid's checkpoints legitimately hold (MultiStepLR milestones).
SAFE_GLOBALS = [collections.Counter]
SAFETENSORS_SUFFIX = ".safetensors"
# Names listed per kind of mismatch in the one-line error.
MAX_NAMES = 5
# Parameters that inference never uses and whose shape may differ between the training job
# and a later one: CIFT's counterfactual nodes, one per position of the per-GPU training batch
# (so shaped by the training job's world size). Strict loading only warns about them.
INFERENCE_UNUSED = ("cri.",)


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
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info(f"Saving checkpoint to {path}")
        atomic_write(path, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(f"{name}.pth")

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
        incompatible = super()._load_model(checkpoint)
        if not self.strict:
            return incompatible

        def fatal(names):
            return sorted(n for n in names if not n.startswith(self.unused))

        missing = fatal(_filter_reused_missing_keys(self.model, incompatible.missing_keys))
        unexpected = fatal(incompatible.unexpected_keys)
        shapes = [s for s in incompatible.incorrect_shapes if not s[0].startswith(self.unused)]
        if missing or unexpected or shapes:
            raise CiftInputError(mismatch_message(self._loading, missing, unexpected, shapes))
        return incompatible


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

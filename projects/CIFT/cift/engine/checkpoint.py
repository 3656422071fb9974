"""fastreid's Checkpointer with atomic writes and loading that never unpickles code."""
from __future__ import annotations

import collections
import json
import os
import tempfile
from typing import Any

import torch
from fastreid.utils.checkpoint import Checkpointer

# Non-tensor types that fastreid's checkpoints legitimately hold (MultiStepLR milestones).
SAFE_GLOBALS = [collections.Counter]


def atomic_write(path: str, write) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place,
    so that `path` is either the old or the complete new content, never a partial one."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def atomic_write_json(path: str, obj: Any) -> None:
    """`obj` as indented JSON (UTF-8), written atomically."""
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, ensure_ascii=False).encode()))


def load_weights_only(path: str) -> dict[str, Any]:
    """torch.load restricted to tensors and plain containers (no code from the file runs)."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


class AtomicCheckpointer(Checkpointer):
    """Writes `<name>.pth` and `last_checkpoint` atomically; loads with `weights_only=True`."""

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

    def _load_file(self, f: str) -> dict[str, Any]:
        return load_weights_only(f)


def num_classes_in_checkpoint(path: str) -> int:
    """Number of training identities of a checkpoint (rows of its classifier weights)."""
    state = load_weights_only(path)
    state = state.get("model", state)
    rows = {v.shape[0] for k, v in state.items() if k.endswith("classifier.weight")}
    if len(rows) != 1:
        raise ValueError(f"{path}: cannot tell the number of classes from its classifiers")
    return rows.pop()

"""Model weights as safetensors bytes: tensors only, nothing that unpickles."""
from __future__ import annotations

import hashlib

import torch

# Hex digits of the SHA-256 of a file that its model-zoo name carries.
HASH_DIGITS = 8


def state_dict_to_safetensors(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict as the bytes of a `.safetensors` file (CPU, contiguous copies, so tensors
    that share storage or are views are written as independent tensors).

    The same tensors always give the same bytes (hence the same hashed name): the header
    holds only {"format": "pt"} as metadata, because safetensors writes its metadata from a
    hash map whose order, with two entries or more, changes from one process to the next.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    return save(tensors, metadata={"format": "pt"})


def safetensors_metadata(path: str) -> dict[str, str]:
    """The string metadata stored in a `.safetensors` header."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return dict(f.metadata() or {})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashed_name(data: bytes, stem: str, suffix: str) -> str:
    """'<stem>_<first HASH_DIGITS hex digits of sha256(data)><suffix>'."""
    return digest_name(sha256_hex(data), stem, suffix)


def digest_name(digest: str, stem: str, suffix: str) -> str:
    """:func:`hashed_name` from the sha256 hex digest already computed."""
    return f"{stem}_{digest[:HASH_DIGITS]}{suffix}"

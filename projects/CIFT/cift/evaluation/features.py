"""Inference features of a model over batches of images, optionally flip-averaged.

The one feature extraction of the topology probes and the gallery search (the trainer's
evaluation runs fastreid's ``inference_on_dataset``, which shards the test set over the
processes of a distributed job and averages flips the same way).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["extract_features", "flipped"]


def flipped(batch: Any) -> Any:
    """The batch with its images mirrored left-right: an (N, C, H, W) image tensor, or a
    fastreid batch dict whose "images" is one (the other entries kept)."""
    if isinstance(batch, dict):
        return dict(batch, images=batch["images"].flip(dims=[3]))
    return batch.flip(dims=[3])


@torch.no_grad()
def extract_features(model: Callable[[Any], torch.Tensor], batches: Iterable[Any],
                     flip: bool = False,
                     select: Callable[[torch.Tensor], torch.Tensor] = lambda out: out
                     ) -> torch.Tensor:
    """The model's inference output for every batch, in order, as one float32 CPU tensor.

    Args:
        model: a module taking a batch (an image tensor or a fastreid batch dict) and returning
            (B, d) features (a baseline) or (B, 2, d) (CIFT's two branches); it runs in eval
            mode and gets its previous mode back afterwards.
        batches: the batches (e.g. a DataLoader).
        flip: average each output with that of the mirrored images (TEST.FLIP.ENABLED, as
            fastreid's evaluation does).
        select: applied to each batch's output before it is kept (e.g. one branch's (B, d)).

    Returns:
        (N, ...) features of all N images; an empty tensor when there is no batch.
    """
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    outputs = []
    try:
        for batch in batches:
            out = model(batch)
            if flip:
                out = (out + model(flipped(batch))) / 2
            outputs.append(select(out).float().cpu())
    finally:
        if was_training:
            model.train()
    return torch.cat(outputs) if outputs else torch.zeros(0)

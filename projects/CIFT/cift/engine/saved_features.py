"""TEST.SAVE_FEATURES: every evaluation writes the test set's features as a features file
(docs/features.md), <OUTPUT_DIR>/features_<test set>.npz beside protocol_results.json, so that
tools/evaluate_features.py can score them again (another protocol setting, the transfer's k and
temperatures, re-ranking) without the model."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

from ..branches import R2I
from ..evaluation.features_file import (
    BENCHMARKS,
    features_record,
    recorded_settings,
    write_features_file,
)
from ..evaluation.vi_evaluator import FeaturesSink
from ..figures import safe_name

__all__ = ["features_path", "features_sink", "with_backbone_features"]

# The backbone branch of a CIFT model's heads (modeling.meta_arch.cift).
BACKBONE_HEAD = "b"


def features_path(output_dir: str, test_set: str) -> str:
    """<output_dir>/features_<test set>.npz."""
    return os.path.join(output_dir, f"features_{safe_name(test_set)}.npz")


def features_sink(cfg, test_set: str, data, items: list[tuple], num_query: int
                  ) -> FeaturesSink | None:
    """What the evaluator calls with the normalised features when TEST.SAVE_FEATURES is set (and
    OUTPUT_DIR is not empty): writes `features_path` atomically. `data` is the test set's data
    set object (its `protocol`, `data_dir` and, for RegDB, `trial`)."""
    if not (cfg.TEST.SAVE_FEATURES and cfg.OUTPUT_DIR):
        return None
    benchmark = next(b for b, (protocol, _) in BENCHMARKS.items() if protocol == data.protocol)

    def sink(arrays) -> None:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        record = features_record(arrays, items, num_query, data.data_dir, benchmark, test_set,
                                 split=getattr(data, "trial", None),
                                 settings=recorded_settings(cfg))
        write_features_file(features_path(cfg.OUTPUT_DIR, test_set), record)
    return sink


@contextlib.contextmanager
def with_backbone_features(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, a CIFT model's inference output (B, 2, d) gets the backbone branch's
    BNNeck features of the same images appended: (B, 3, d), what a features file calls `feats`.

    Two hooks, removed on exit: the r2i neck's input is the pooled backbone features; the
    model's output gets the `b` neck's features of them. A model without graph branches (or
    `enabled=False`) is left as it is.
    """
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    heads = getattr(module, "heads", None)
    if not (enabled and isinstance(heads, nn.ModuleDict) and BACKBONE_HEAD in heads
            and R2I in heads):
        yield
        return
    pooled: dict[str, torch.Tensor] = {}

    def keep_pooled(_, inputs) -> None:
        pooled["x"] = inputs[0]

    def append_backbone(mod, _, output):
        if mod.training or "x" not in pooled:
            return output
        backbone = heads[BACKBONE_HEAD].neck(pooled.pop("x"))
        return torch.cat([output, backbone[:, None].to(output.dtype)], dim=1)

    handles = [heads[R2I].neck.register_forward_pre_hook(keep_pooled),
               module.register_forward_hook(append_backbone)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()

"""A trained model for inference from a config and MODEL.WEIGHTS (.pth or .safetensors)."""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import torch
from fastreid.modeling.meta_arch import build_model

from ..config import load_config
from ..engine.checkpoint import AtomicCheckpointer, num_classes_in_checkpoint
from ..errors import CiftInputError


def inference_config(cfg, trust: bool = False, device: str | None = None):
    """A copy of `cfg` ready to rebuild a trained model: no ImageNet download (the weights
    replace them), MODEL.HEADS.NUM_CLASSES from the checkpoint's classifiers when it is 0,
    MODEL.DEVICE `device` if given.

    Raises:
        CiftInputError: MODEL.WEIGHTS empty or missing, a CUDA device without a GPU, or an
            unreadable / unsafe checkpoint.
    """
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise CiftInputError("MODEL.WEIGHTS: give the trained weights (.pth or .safetensors)")
    if not os.path.isfile(weights):
        raise CiftInputError(f"MODEL.WEIGHTS {weights}: file not found")
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    if device is not None:
        cfg.MODEL.DEVICE = device
    if torch.device(cfg.MODEL.DEVICE).type == "cuda" and not torch.cuda.is_available():
        raise CiftInputError(f"MODEL.DEVICE {cfg.MODEL.DEVICE!r}: no GPU is visible "
                             "(use MODEL.DEVICE cpu)")
    if cfg.MODEL.HEADS.NUM_CLASSES == 0:
        cfg.MODEL.HEADS.NUM_CLASSES = num_classes_in_checkpoint(weights, trust=trust)
    cfg.freeze()
    return cfg


class LoadedModel(NamedTuple):
    cfg: Any  # resolved (inference_config)
    model: torch.nn.Module  # in eval mode, MODEL.WEIGHTS loaded
    state: dict[str, torch.Tensor]  # the file's model tensors, as stored


def load_inference_model(cfg, trust: bool = False, device: str | None = None) -> LoadedModel:
    """The model of `cfg` with MODEL.WEIGHTS loaded, for inference.

    Every parameter and buffer of the model must come from the file with its shape: a
    mismatch (another architecture or config) raises a CiftInputError naming the parameters
    (parameters inference never reads, CRI's, are only logged: see
    cift.engine.checkpoint.INFERENCE_UNUSED).
    """
    cfg = inference_config(cfg, trust=trust, device=device)
    model = build_model(cfg)
    checkpointer = AtomicCheckpointer(model, strict=True, trust=trust)
    checkpointer.load(cfg.MODEL.WEIGHTS)
    return LoadedModel(cfg, model.eval(), checkpointer.loaded_state)


def load_model_from_files(config_file: str, opts=(), trust: bool = False,
                          device: str | None = None) -> LoadedModel:
    """`load_inference_model` of a YAML config plus `KEY VALUE` overrides."""
    return load_inference_model(load_config(config_file, list(opts)), trust=trust,
                                device=device)

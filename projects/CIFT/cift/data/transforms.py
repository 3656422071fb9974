"""Image transforms of the authors' recipe (DESIGN §3), on fastreid's 0-255 tensor convention.

fastreid models normalise inside `forward` (MODEL.PIXEL_MEAN/STD on the 0-255 scale), so the
loader yields float tensors in 0..255; random erasing therefore runs before normalisation, as
in the authors' code, with its fill given on the same scale (INPUT.REA.VALUE).
"""
from __future__ import annotations

import torch
import torchvision.transforms as T


class PILToFloatTensor:
    """PIL RGB image -> float32 tensor (3, H, W) with values in 0..255."""

    def __call__(self, image) -> torch.Tensor:
        return T.functional.pil_to_tensor(image).float()


def build_vi_transforms(cfg, is_train: bool = True) -> T.Compose:
    """Train: Resize, Pad, RandomCrop, HFlip, to tensor, RandomErasing; test: Resize, to tensor."""
    if not is_train:
        return T.Compose([T.Resize(tuple(cfg.INPUT.SIZE_TEST), interpolation=3),
                          PILToFloatTensor()])
    size = tuple(cfg.INPUT.SIZE_TRAIN)
    steps = [T.Resize(size, interpolation=3)]
    if cfg.INPUT.PADDING.ENABLED:
        steps += [T.Pad(cfg.INPUT.PADDING.SIZE, padding_mode=cfg.INPUT.PADDING.MODE),
                  T.RandomCrop(size)]
    if cfg.INPUT.FLIP.ENABLED:
        steps.append(T.RandomHorizontalFlip(p=cfg.INPUT.FLIP.PROB))
    steps.append(PILToFloatTensor())
    if cfg.INPUT.REA.ENABLED:
        steps.append(T.RandomErasing(p=cfg.INPUT.REA.PROB, scale=tuple(cfg.INPUT.REA.AREA),
                                     ratio=tuple(cfg.INPUT.REA.RATIO),
                                     value=[float(v) for v in cfg.INPUT.REA.VALUE]))
    return T.Compose(steps)

"""Image transforms of the authors' recipe, on fastreid's 0-255 tensor convention.

fastreid models normalise inside `forward` (MODEL.PIXEL_MEAN/STD on the 0-255 scale), so the
loader yields float tensors in 0..255; random erasing therefore runs before normalisation, as
in the authors' code, with its fill given on the same scale (INPUT.REA.VALUE).

Train: Resize (INPUT.INTERPOLATION, bilinear as torchvision's default the authors use) → Pad →
RandomCrop → HFlip → to tensor → :class:`RandomErasing` (the authors' own, not torchvision's);
test: Resize → to tensor.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchvision.transforms as T

from ..errors import check_choice

INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR,
                  "bicubic": T.InterpolationMode.BICUBIC}
RATIO_SAMPLINGS = ("uniform", "log-uniform")


class PILToFloatTensor:
    """PIL RGB image -> float32 tensor (3, H, W) with values in 0..255."""

    def __call__(self, image) -> torch.Tensor:
        return T.functional.pil_to_tensor(image).float()


def erased_size(height: int, width: int, area_fraction: float, aspect_ratio: float
                ) -> tuple[int, int] | None:
    """Size of the rectangle one erasing attempt proposes, or None when it does not fit.

    The rectangle covers ``area_fraction`` of the ``height x width`` image with ``h / w`` =
    ``aspect_ratio``: h = round(sqrt(area * r)), w = round(sqrt(area / r)) (Python's round,
    halves to even). It is accepted only when strictly smaller than the image in both
    directions (h < height and w < width), as in the authors' code.

    Returns:
        (h, w) in pixels, or None.
    """
    area = area_fraction * height * width
    h = int(round(math.sqrt(area * aspect_ratio)))
    w = int(round(math.sqrt(area / aspect_ratio)))
    return (h, w) if h < height and w < width else None


def sample_erasing_box(height: int, width: int, area: Sequence[float] = (0.02, 0.4),
                       ratio: Sequence[float] = (0.3, 3.33), attempts: int = 100,
                       ratio_sampling: str = "uniform",
                       generator: torch.Generator | None = None
                       ) -> tuple[int, int, int, int] | None:
    """Draw the rectangle random erasing blanks, as the authors' RandomErasing draws it.

    Up to ``attempts`` times: area fraction ~ U(area), aspect ratio h/w ~ U(ratio) (or, with
    ``ratio_sampling="log-uniform"``, exp(U(log ratio)) as torchvision's RandomErasing); the
    first proposal :func:`erased_size` accepts is placed with its top-left corner uniform in
    [0, height - h) x [0, width - w) (the authors' exclusive bound: the rectangle never touches
    the bottom or right edge). None when no attempt fits.

    Random numbers come from ``generator``, or torch's global generator when None. In a
    DataLoader worker that generator is seeded by torch from the main process's torch RNG
    (base seed + worker id), so it follows SEED; the authors draw from numpy's global RNG.

    Returns:
        (top, left, h, w) in pixels, or None.
    """
    if ratio_sampling not in RATIO_SAMPLINGS:
        raise ValueError(f"ratio_sampling must be one of {RATIO_SAMPLINGS}, "
                         f"got {ratio_sampling!r}")
    log = ratio_sampling == "log-uniform"
    lo, hi = (math.log(r) if log else float(r) for r in ratio)
    for _ in range(attempts):
        u_area, u_ratio = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        fraction = area[0] + (area[1] - area[0]) * u_area
        r = lo + (hi - lo) * u_ratio
        size = erased_size(height, width, fraction, math.exp(r) if log else r)
        if size is None:
            continue
        h, w = size
        top = int(torch.randint(0, height - h, (1,), generator=generator))
        left = int(torch.randint(0, width - w, (1,), generator=generator))
        return top, left, h, w
    return None


class RandomErasing:
    """With probability ``p``, fill one rectangle of a (C, H, W) tensor with ``value`` per
    channel; the rectangle is drawn by :func:`sample_erasing_box`.

    Args:
        p: probability of erasing an image.
        area, ratio, attempts, ratio_sampling: as :func:`sample_erasing_box`.
        value: (C,) fill per channel, on the tensor's scale (0-255 here: the CIFAR mean x 255
            in the paper configs).
    """

    def __init__(self, p: float = 0.5, area: Sequence[float] = (0.02, 0.4),
                 ratio: Sequence[float] = (0.3, 3.33), value: Sequence[float] = (0.0, 0.0, 0.0),
                 attempts: int = 100, ratio_sampling: str = "uniform"):
        check_choice("INPUT.REA.RATIO_SAMPLING", ratio_sampling, RATIO_SAMPLINGS)
        self.p, self.area, self.ratio = float(p), tuple(area), tuple(ratio)
        self.value = torch.tensor([float(v) for v in value])
        self.attempts, self.ratio_sampling = int(attempts), ratio_sampling

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() >= self.p:
            return image
        box = sample_erasing_box(image.shape[-2], image.shape[-1], self.area, self.ratio,
                                 self.attempts, self.ratio_sampling)
        if box is None:
            return image
        top, left, h, w = box
        image = image.clone()
        image[..., top:top + h, left:left + w] = self.value.to(image)[:, None, None]
        return image

    def __repr__(self) -> str:
        return (f"RandomErasing(p={self.p}, area={self.area}, ratio={self.ratio}, "
                f"attempts={self.attempts}, ratio_sampling={self.ratio_sampling!r})")


def build_vi_transforms(cfg, is_train: bool = True) -> T.Compose:
    """Train: Resize, Pad, RandomCrop, HFlip, to tensor, RandomErasing; test: Resize, to tensor."""
    check_choice("INPUT.INTERPOLATION", cfg.INPUT.INTERPOLATION, tuple(INTERPOLATIONS))
    interpolation = INTERPOLATIONS[cfg.INPUT.INTERPOLATION]
    if not is_train:
        return T.Compose([T.Resize(tuple(cfg.INPUT.SIZE_TEST), interpolation=interpolation),
                          PILToFloatTensor()])
    size = tuple(cfg.INPUT.SIZE_TRAIN)
    steps = [T.Resize(size, interpolation=interpolation)]
    if cfg.INPUT.PADDING.ENABLED:
        steps += [T.Pad(cfg.INPUT.PADDING.SIZE, padding_mode=cfg.INPUT.PADDING.MODE),
                  T.RandomCrop(size)]
    if cfg.INPUT.FLIP.ENABLED:
        steps.append(T.RandomHorizontalFlip(p=cfg.INPUT.FLIP.PROB))
    steps.append(PILToFloatTensor())
    if cfg.INPUT.REA.ENABLED:
        r = cfg.INPUT.REA
        steps.append(RandomErasing(p=r.PROB, area=tuple(r.AREA), ratio=tuple(r.RATIO),
                                   value=r.VALUE, attempts=r.ATTEMPTS,
                                   ratio_sampling=r.RATIO_SAMPLING))
    return T.Compose(steps)

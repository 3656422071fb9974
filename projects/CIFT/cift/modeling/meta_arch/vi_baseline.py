"""VIBaseline: shared one-stream ResNet + BNNeck, trained with CE + HCC (paper baseline)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.heads import build_heads
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils.events import get_event_storage
from torch import nn

from ...fastreid_private import storage_is_open
from ..losses import hcc_loss


def loss_scales_from_config(cfg) -> dict[str, float]:
    """Scales and margins of the baseline's three loss terms."""
    hcc = cfg.MODEL.LOSSES.HCC
    return {"ce": cfg.MODEL.LOSSES.CE.SCALE,
            "hcc_euc": hcc.EUC.SCALE, "hcc_euc_margin": hcc.EUC.MARGIN,
            "hcc_kl": hcc.KL.SCALE, "hcc_kl_margin": hcc.KL.MARGIN}


def log_accuracy(logits: torch.Tensor, pids: torch.Tensor, name: str = "cls_accuracy") -> None:
    """Record top-1 training accuracy when running inside a fastreid EventStorage."""
    if storage_is_open():
        acc = (logits.detach().argmax(1) == pids).float().mean().item()
        get_event_storage().put_scalar(name, acc)


@META_ARCH_REGISTRY.register()
class VIBaseline(nn.Module):
    """ResNet (one stream shared by both modalities, last stride 1) -> global average pooling
    -> BNNeck -> bias-free classifier.

    Training input: a batch dict with `images` (B, 3, H, W) on the 0-255 scale, `targets` (B,)
    and `is_visible` (B,) bool. Losses: CE(logits) + HCC_euc(pool) + HCC_kl(logits).
    Inference output: BNNeck features (B, d).
    """

    @configurable
    def __init__(self, *, backbone: nn.Module, heads: nn.Module, pixel_mean, pixel_std,
                 loss_scales: dict[str, float]):
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.loss_scales = dict(loss_scales)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg) -> dict[str, Any]:
        return {"backbone": build_backbone(cfg), "heads": build_heads(cfg),
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
                "loss_scales": loss_scales_from_config(cfg)}

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def pooled_features(self, batched_inputs: dict[str, Any] | torch.Tensor) -> torch.Tensor:
        """Normalised images -> backbone -> global average pooling: (B, d)."""
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        images = (images.to(self.device) - self.pixel_mean) / self.pixel_std  # not in place
        return F.adaptive_avg_pool2d(self.backbone(images), 1).flatten(1)

    def forward(self, batched_inputs: dict[str, Any] | torch.Tensor):
        pool = self.pooled_features(batched_inputs)
        out = self.heads(pool)
        if not self.training:
            return out["neck"]
        pids = batched_inputs["targets"].to(self.device)
        is_visible = batched_inputs["is_visible"].to(self.device)
        return self.losses(pool, out["logits"], pids, is_visible)

    def losses(self, pool: torch.Tensor, logits: torch.Tensor, pids: torch.Tensor,
               is_visible: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named, scaled loss terms (fastreid sums the dict)."""
        log_accuracy(logits, pids)
        s = self.loss_scales
        return {
            "loss_ce": F.cross_entropy(logits, pids) * s["ce"],
            "loss_hcc_euc": hcc_loss(pool, pids, is_visible, level="euc",
                                     margin=s["hcc_euc_margin"]) * s["hcc_euc"],
            "loss_hcc_kl": hcc_loss(logits, pids, is_visible, level="kl",
                                    margin=s["hcc_kl_margin"]) * s["hcc_kl"],
        }

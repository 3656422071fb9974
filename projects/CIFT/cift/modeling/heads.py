"""BNNeck + bias-free classifier head, as in the authors' code (one per branch)."""
from __future__ import annotations

import torch
from fastreid.config import configurable
from fastreid.modeling.heads import REID_HEADS_REGISTRY
from torch import nn


@REID_HEADS_REGISTRY.register()
class BNNeckHead(nn.Module):
    """BatchNorm1d neck (bias frozen at 0, weight ~ N(1, bn_std)) and a bias-free linear
    classifier (weight ~ N(0, cls_std)).

    Input: pooled features (B, d). Output dict: `neck` (B, d) BNNeck features and `logits`
    (B, num_classes).
    """

    @configurable
    def __init__(self, *, feat_dim: int, num_classes: int, bn_std: float = 0.01,
                 cls_std: float = 0.001):
        super().__init__()
        self.neck = nn.BatchNorm1d(feat_dim)
        nn.init.normal_(self.neck.weight, 1.0, bn_std)
        nn.init.zeros_(self.neck.bias)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(feat_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, 0.0, cls_std)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {"feat_dim": cfg.MODEL.BACKBONE.FEAT_DIM,
                "num_classes": cfg.MODEL.HEADS.NUM_CLASSES,
                "bn_std": cfg.MODEL.HEADS.BN_INIT_STD,
                "cls_std": cfg.MODEL.HEADS.CLS_INIT_STD}

    def forward(self, pool: torch.Tensor) -> dict[str, torch.Tensor]:
        neck = self.neck(pool)
        return {"neck": neck, "logits": self.classifier(neck)}

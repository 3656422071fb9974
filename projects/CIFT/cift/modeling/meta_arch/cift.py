"""VIBaseline (the paper's baseline) and CIFT on top of it, with their BNNeck head: with graph.py
and losses/hcc.py, the whole training forward."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.heads import REID_HEADS_REGISTRY, build_heads
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils import comm
from fastreid.utils.events import get_event_storage
from torch import nn

from ...branches import BRANCHES
from ...fastreid_private import storage_is_open
from ...search_settings import TransferSettings, transfer_settings
from ..graph import CounterfactualRelation, GraphSettings, affinity, training_query_mask
from ..losses import hcc_loss
from ..transfer import test_time_transfer

PROJECTIONS = ("identity", "linear")


@REID_HEADS_REGISTRY.register()
class BNNeckHead(nn.Module):
    """(B, d) pool -> {"neck": BatchNorm1d(pool), bias frozen at 0, weight ~ N(1, bn_std);
    "logits": bias-free linear classifier of the neck, weight ~ N(0, cls_std)}."""

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
        h = cfg.MODEL.HEADS
        return {"feat_dim": cfg.MODEL.BACKBONE.FEAT_DIM, "num_classes": h.NUM_CLASSES,
                "bn_std": h.BN_INIT_STD, "cls_std": h.CLS_INIT_STD}

    def forward(self, pool: torch.Tensor) -> dict[str, torch.Tensor]:
        neck = self.neck(pool)
        return {"neck": neck, "logits": self.classifier(neck)}


def log_accuracy(logits: torch.Tensor, pids: torch.Tensor, name: str = "cls_accuracy") -> None:
    """Record top-1 training accuracy when running inside a fastreid EventStorage."""
    if storage_is_open():
        acc = (logits.detach().argmax(1) == pids).float().mean().item()
        get_event_storage().put_scalar(name, acc)


@META_ARCH_REGISTRY.register()
class VIBaseline(nn.Module):
    """ResNet (one stream for both modalities) -> average pooling -> BNNeckHead. Training input:
    a dict of `images` (B, 3, H, W) on the 0-255 scale, `targets` (B,), `is_visible` (B,) bool;
    losses CE(y_b) + HCC_euc(pool) + HCC_kl(y_b) (supp. eqs. 4, 7). Inference: (B, d) necks."""

    @configurable
    def __init__(self, *, backbone: nn.Module, heads: nn.Module, pixel_mean, pixel_std,
                 loss_scales: dict[str, float]):
        super().__init__()
        self.backbone, self.heads = backbone, heads
        self.loss_scales = dict(loss_scales)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg) -> dict[str, Any]:
        losses = cfg.MODEL.LOSSES
        scales = {"ce": losses.CE.SCALE, "hcc_euc": losses.HCC.EUC.SCALE,
                  "hcc_euc_margin": losses.HCC.EUC.MARGIN, "hcc_kl": losses.HCC.KL.SCALE,
                  "hcc_kl_margin": losses.HCC.KL.MARGIN}
        return {"backbone": build_backbone(cfg), "heads": build_heads(cfg),
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
                "loss_scales": scales}

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
        return {"loss_ce": F.cross_entropy(logits, pids) * s["ce"],
                "loss_hcc_euc": hcc_loss(pool, pids, is_visible, "euc", s["hcc_euc_margin"])
                * s["hcc_euc"],
                "loss_hcc_kl": hcc_loss(logits, pids, is_visible, "kl", s["hcc_kl_margin"])
                * s["hcc_kl"]}


@META_ARCH_REGISTRY.register()
class CIFT(VIBaseline):
    """Counterfactual Intervention Feature Transfer (Li et al., ECCV 2022), as the authors' code
    trains it. Three BNNeck heads: `b`, and the graph branches `r2i` and `i2r`. A graph branch
    transfers its BNNeck features X over the batch graph, Y = A·X (A: the affinity of the keys
    v(X) with the branch's UBS masks); CRI classifies the effect Y - E[A*·X]. The loss:

        CE(y_b) + HCC_euc(pool) + HCC_kl(y_b)
        + 1/2 [CE(y_r2i) + CE(y_i2r)] + 1/2 [HCC_kl(y_r2i) + HCC_kl(y_i2r)]
        + 1/2 [CE(y_TIE_r2i) + CE(y_TIE_i2r)]

    Inference output: (B, 2, d), the r2i and i2r BNNecks (then :meth:`transfer_test_features`).
    """

    @configurable
    def __init__(self, *, backbone: nn.Module, heads: nn.ModuleDict, pixel_mean, pixel_std,
                 loss_scales: dict[str, float], graph: GraphSettings | None = None,
                 cri: CounterfactualRelation | nn.ModuleDict | None = None,
                 projections: nn.ModuleDict | None = None,
                 test_transfer: TransferSettings | None = None):
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean,
                         pixel_std=pixel_std, loss_scales=loss_scales)
        self.graph = graph or GraphSettings()
        self.cri = cri  # one module for both branches, or one per branch
        self.projections = projections or nn.ModuleDict({b: nn.Identity() for b in BRANCHES})
        self.test_transfer = test_transfer or TransferSettings()

    @classmethod
    def from_config(cls, cfg) -> dict[str, Any]:
        c, d, losses = cfg.MODEL.CIFT, cfg.MODEL.BACKBONE.FEAT_DIM, cfg.MODEL.LOSSES
        args = super().from_config(cfg)  # the backbone and b head first, as a VIBaseline's
        branch_heads = {b: build_heads(cfg) for b in BRANCHES}
        args["heads"] = nn.ModuleDict({"b": args["heads"], **branch_heads})
        args["loss_scales"].update(graph_ce=losses.GRAPH_CE.SCALE, cri_ce=losses.CRI_CE.SCALE,
                                   graph_hcc_kl=losses.GRAPH_HCC_KL.SCALE)
        cri = None
        if c.CRI.ENABLED:  # one counterfactual node per position of the per-GPU batch
            batch = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
            cri = (CounterfactualRelation(batch, d, c.CRI.SAMPLES) if c.CRI.SHARED else
                   nn.ModuleDict({b: CounterfactualRelation(batch, d, c.CRI.SAMPLES)
                                  for b in BRANCHES}))
        projections = nn.ModuleDict({b: nn.Linear(d, d, bias=False) if c.PROJECTION == "linear"
                                     else nn.Identity() for b in BRANCHES})  # keys v(x)
        return {**args, "graph": GraphSettings.from_config(cfg), "cri": cri,
                "projections": projections, "test_transfer": transfer_settings(cfg)}

    def forward(self, batched_inputs: dict[str, Any] | torch.Tensor):
        pool = self.pooled_features(batched_inputs)  # (B, d)
        if not self.training:
            return torch.stack([self.heads[b].neck(pool) for b in BRANCHES], dim=1)
        pids = batched_inputs["targets"].to(self.device)
        is_visible = batched_inputs["is_visible"].to(self.device)
        losses = self.losses(pool, self.heads["b"](pool)["logits"], pids, is_visible)
        losses.update(self.graph_losses(pool, pids, is_visible))
        return losses

    def graph_losses(self, pool: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        """The graph and CRI terms of the loss, each the mean over the two branches, scaled."""
        s = self.loss_scales
        ce, hcc_kl, cri_ce = [], [], []
        for branch in BRANCHES:
            head = self.heads[branch]
            is_query = training_query_mask(is_visible, branch)
            x = head.neck(pool)  # X, (B, d)
            y = affinity(self.projections[branch](x), is_query, self.graph) @ x  # Y = A·X
            logits = head.classifier(y)
            log_accuracy(logits, pids, f"cls_accuracy_{branch}")
            ce.append(F.cross_entropy(logits, pids))
            hcc_kl.append(hcc_loss(logits, pids, is_visible, "kl", s["hcc_kl_margin"]))
            if self.cri is not None:
                cri = self.cri[branch] if isinstance(self.cri, nn.ModuleDict) else self.cri
                # each call draws its own noise, as the authors' two calls of one module do
                y_tie = y - cri(x, is_query, self.graph)  # Y - E[A*·X]
                cri_ce.append(F.cross_entropy(head.classifier(y_tie), pids))
        losses = {"loss_graph_ce": torch.stack(ce).mean() * s["graph_ce"],
                  "loss_graph_hcc_kl": torch.stack(hcc_kl).mean() * s["graph_hcc_kl"]}
        if cri_ce:
            losses["loss_cri_ce"] = torch.stack(cri_ce).mean() * s["cri_ce"]
        return losses

    @torch.no_grad()
    def transfer_test_features(self, gallery: torch.Tensor, queries: torch.Tensor, branch: str
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, d) gallery, (Q, d) queries of `branch` -> both transferred on their test graph,
        L2-normalised; from neighbour lists where TEST.TRANSFER says so."""
        g, q = gallery.to(self.device), queries.to(self.device)
        keys, t = self.projections[branch], self.test_transfer
        return test_time_transfer(g, q, self.graph, t.form(g.shape[0] + q.shape[0]), t.backend,
                                  keys(g), keys(q))

"""CIFT: VIBaseline + H2FT graph branches (r2i, i2r) + counterfactual relation intervention."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.heads import build_heads
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils import comm
from torch import nn

from ...branches import BRANCHES
from ...errors import check_choice
from ...search_settings import TransferSettings, transfer_settings
from ..counterfactual import CounterfactualRelation, counterfactual_effect
from ..graph import (
    GRAPHS,
    graph_affinity,
    graph_query_mask,
    sparse_transfer_gallery_queries,
    training_query_mask,
    transfer_gallery_queries,
)
from ..losses import hcc_loss
from .vi_baseline import VIBaseline, log_accuracy, loss_scales_from_config

PROJECTIONS = ("identity", "linear")


def graph_settings_from_config(cfg) -> dict[str, Any]:
    """MODEL.CIFT.* as keyword arguments, validated (unknown values name the key)."""
    c = cfg.MODEL.CIFT
    check_choice("MODEL.CIFT.GRAPH", c.GRAPH, GRAPHS)
    check_choice("MODEL.CIFT.PROJECTION", c.PROJECTION, PROJECTIONS)
    return {"graph": c.GRAPH, "tau_hom": c.TAU_HOM, "tau_het": c.TAU_HET, "k": c.TOPK}


@META_ARCH_REGISTRY.register()
class CIFT(VIBaseline):
    """Counterfactual Intervention Feature Transfer (Li et al., ECCV 2022), as the authors'
    code trains it (docs/design.md §1).

    One shared backbone and three BNNeck + classifier heads: `b` (backbone branch), `r2i` and
    `i2r` (graph branches, both every iteration). A graph branch transfers its BNNeck features
    X over the batch graph, Y = A·X, where A is the H2FT affinity (UBS masks: the branch's
    query half sees only the gallery half and itself) or, for the GFT ablation, one graph over
    all nodes. CRI builds A* from learnable counterfactual node features (one set shared by
    both branches by default, MODEL.CIFT.CRI.SHARED) and classifies the effect Y - E[A*·X]. Losses:

        CE(y_b) + HCC_euc(pool) + HCC_kl(y_b)
        + 1/2 [CE(y_r2i) + CE(y_i2r)] + 1/2 [HCC_kl(y_r2i) + HCC_kl(y_i2r)]
        + 1/2 [CE(y_TIE_r2i) + CE(y_TIE_i2r)]

    Inference output: (B, 2, d), the BNNeck features of the r2i and i2r branches; the evaluator
    transfers them over the test graph with :meth:`transfer_test_features`.
    """

    @configurable
    def __init__(self, *, backbone: nn.Module, heads: nn.ModuleDict, pixel_mean, pixel_std,
                 loss_scales: dict[str, float], graph: str = "h2ft", tau_hom: float = 0.4,
                 tau_het: float = 0.2, k: int = 4,
                 cri: CounterfactualRelation | nn.ModuleDict | None = None,
                 projections: nn.ModuleDict | None = None,
                 test_transfer: TransferSettings | None = None):
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean,
                         pixel_std=pixel_std, loss_scales=loss_scales)
        self.graph, self.tau_hom, self.tau_het, self.k = graph, tau_hom, tau_het, k
        self.cri = cri
        self.projections = projections
        self.test_transfer = test_transfer or TransferSettings()

    @classmethod
    def from_config(cls, cfg) -> dict[str, Any]:
        settings = graph_settings_from_config(cfg)
        # TEST.TRANSFER.* and the search backend, read and checked outside the model
        settings["test_transfer"] = transfer_settings(cfg)
        # backbone, then the b head first: same initial weights as a VIBaseline of the same seed
        backbone = build_backbone(cfg)
        heads = nn.ModuleDict({b: build_heads(cfg) for b in ("b", *BRANCHES)})
        d = cfg.MODEL.BACKBONE.FEAT_DIM
        cri = None
        if cfg.MODEL.CIFT.CRI.ENABLED:
            # CRI has one counterfactual node per position of the per-GPU batch; one set
            # serves both branches (the authors build a single graph module) unless
            # MODEL.CIFT.CRI.SHARED is False (one set per branch).
            batch = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()

            def relation() -> CounterfactualRelation:
                return CounterfactualRelation(batch, d, cfg.MODEL.CIFT.CRI.SAMPLES)

            cri = (relation() if cfg.MODEL.CIFT.CRI.SHARED
                   else nn.ModuleDict({b: relation() for b in BRANCHES}))
        projections = None
        if cfg.MODEL.CIFT.PROJECTION == "linear":
            projections = nn.ModuleDict({b: nn.Linear(d, d, bias=False) for b in BRANCHES})
        scales = loss_scales_from_config(cfg)
        scales.update(graph_ce=cfg.MODEL.LOSSES.GRAPH_CE.SCALE,
                      graph_hcc_kl=cfg.MODEL.LOSSES.GRAPH_HCC_KL.SCALE,
                      cri_ce=cfg.MODEL.LOSSES.CRI_CE.SCALE)
        return {"backbone": backbone, "heads": heads,
                "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
                "loss_scales": scales, "cri": cri, "projections": projections, **settings}

    def counterfactual(self, branch: str) -> CounterfactualRelation:
        """The CRI module `branch` uses: the shared one, or that branch's own."""
        return self.cri if isinstance(self.cri, CounterfactualRelation) else self.cri[branch]

    def keys(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """v(x): the features the affinities are computed from (identity by default)."""
        return x if self.projections is None else self.projections[branch](x)

    def graph_query_mask(self, is_query: torch.Tensor) -> torch.Tensor:
        """H2FT keeps the query/gallery split; GFT treats every node as gallery (one graph)."""
        return graph_query_mask(is_query, self.graph)

    def branch_affinity(self, x: torch.Tensor, is_query: torch.Tensor, branch: str
                        ) -> torch.Tensor:
        """(N, d) BNNeck features -> (N, N) affinity of `branch` (its keys, graph kind,
        temperatures and k)."""
        return graph_affinity(self.keys(x, branch), is_query, self.graph, tau_hom=self.tau_hom,
                              tau_het=self.tau_het, k=self.k)

    def forward(self, batched_inputs: dict[str, Any] | torch.Tensor):
        pool = self.pooled_features(batched_inputs)
        if not self.training:
            return torch.stack([self.heads[b].neck(pool) for b in BRANCHES], dim=1)
        pids = batched_inputs["targets"].to(self.device)
        is_visible = batched_inputs["is_visible"].to(self.device)
        backbone_logits = self.heads["b"](pool)["logits"]
        losses = self.losses(pool, backbone_logits, pids, is_visible)
        losses.update(self.graph_losses(pool, pids, is_visible))
        return losses

    def graph_losses(self, pool: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        """The graph and CRI terms, each the mean over the two branches, scaled."""
        s = self.loss_scales
        ce, kl, cri_ce = [], [], []
        for branch in BRANCHES:
            head = self.heads[branch]
            is_query = training_query_mask(is_visible, branch)
            x = head.neck(pool)
            y = self.branch_affinity(x, is_query, branch) @ x
            logits = head.classifier(y)
            log_accuracy(logits, pids, f"cls_accuracy_{branch}")
            ce.append(F.cross_entropy(logits, pids))
            kl.append(hcc_loss(logits, pids, is_visible, level="kl", margin=s["hcc_kl_margin"]))
            if self.cri is not None:
                # each call draws its own noise, as the authors' two calls of one module do
                y_cf = self.counterfactual(branch)(x, self.graph_query_mask(is_query),
                                                   tau_hom=self.tau_hom, tau_het=self.tau_het,
                                                   k=self.k)
                effect_logits = head.classifier(counterfactual_effect(y, y_cf))
                cri_ce.append(F.cross_entropy(effect_logits, pids))
        losses = {"loss_graph_ce": torch.stack(ce).mean() * s["graph_ce"],
                  "loss_graph_hcc_kl": torch.stack(kl).mean() * s["graph_hcc_kl"]}
        if cri_ce:
            losses["loss_cri_ce"] = torch.stack(cri_ce).mean() * s["cri_ce"]
        return losses

    @torch.no_grad()
    def transfer_test_features(self, gallery: torch.Tensor, queries: torch.Tensor, branch: str
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Test-time transfer of `branch` on the [gallery ; queries] graph (docs/design.md §1):
        inputs and outputs L2-normalised. H2FT: each query sees the gallery and itself, built
        densely or from neighbour lists (TEST.TRANSFER); GFT: one dense graph over every node."""
        g = F.normalize(gallery.to(self.device), dim=1)
        q = F.normalize(queries.to(self.device), dim=1)
        if self.graph == "h2ft":
            t = self.test_transfer
            kwargs = dict(tau_hom=self.tau_hom, tau_het=self.tau_het, k=self.k,
                          gallery_keys=self.keys(g, branch), query_keys=self.keys(q, branch))
            if t.sparse(g.shape[0] + q.shape[0]):
                g_out, q_out = sparse_transfer_gallery_queries(g, q, backend=t.backend, **kwargs)
            else:
                g_out, q_out = transfer_gallery_queries(g, q, **kwargs)
        else:
            x = torch.cat([g, q])
            everyone = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            y = self.branch_affinity(x, everyone, branch) @ x
            g_out, q_out = y[:g.shape[0]], y[g.shape[0]:]
        return F.normalize(g_out, dim=1), F.normalize(q_out, dim=1)

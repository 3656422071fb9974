"""CIFT's graphs: H2FT / GFT affinity, the row rule they all share, CRI (docs/design.md §1)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..branches import R2I
from ..neighbours import NORM_FLOOR

__all__ = ["GRAPHS", "CounterfactualRelation", "GraphSettings", "affinity", "cosine_similarity",
           "neighbour_mask", "row_weights", "training_query_mask"]

GRAPHS = ("h2ft", "gft")


@dataclass(frozen=True)
class GraphSettings:
    """MODEL.CIFT.GRAPH ("h2ft" or "gft"), TAU_HOM and TAU_HET (> 0: gallery and query rows),
    TOPK (k >= 1, self included), checked when the config is loaded."""

    graph: str = "h2ft"
    tau_hom: float = 0.4
    tau_het: float = 0.2
    k: int = 4

    @classmethod
    def from_config(cls, cfg) -> GraphSettings:
        c = cfg.MODEL.CIFT
        return cls(graph=c.GRAPH, tau_hom=c.TAU_HOM, tau_het=c.TAU_HET, k=c.TOPK)

    def queries(self, is_query: torch.Tensor) -> torch.Tensor:
        """The queries the masks use: ``is_query`` (H2FT), none (GFT: the one place it is)."""
        return is_query if self.graph == "h2ft" else torch.zeros_like(is_query)


def training_query_mask(is_visible: torch.Tensor, branch: str) -> torch.Tensor:
    """(B,) bool: the queries of `branch` in a training batch (r2i: visible, i2r: infrared)."""
    return is_visible.clone() if branch == R2I else ~is_visible


def neighbour_mask(is_query: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
    """UBS: (N,) bool queries -> (N, N) bool, column j allowed in row i when j is a gallery node
    or j == i; ``self_loops=False`` removes the diagonal."""
    eye = torch.eye(is_query.shape[0], dtype=torch.bool, device=is_query.device)
    allowed = ~is_query[None, :] | eye
    return allowed & ~eye if not self_loops else allowed


def cosine_similarity(x: torch.Tensor) -> torch.Tensor:
    """(..., N, d) -> (..., N, N) cos(x_i, x_j). The Gram matrix is divided by the norms
    afterwards, so that equal features give bitwise-equal columns (reproducible ties)."""
    norms = x.norm(dim=-1).clamp_min(NORM_FLOOR)
    return x @ x.transpose(-1, -2) / norms[..., :, None] / norms[..., None, :]


def row_weights(logits: torch.Tensor, k: int, allowed: torch.Tensor | None = None) -> torch.Tensor:
    r"""The row rule of every CIFT graph, :math:`A = D^{-1} \mathcal{T}(S, k)` (supplementary
    eq. 9): (..., n, m) logits s / tau, (n, m) bool ``allowed`` (None: all) -> (..., n, m)
    weights. :math:`S = \exp(\text{logits})` on allowed entries, 0 elsewhere; each row keeps
    its entries strictly greater than its (k+1)-th largest and is normalised to sum 1 (an empty
    row stays 0)."""
    if allowed is not None:
        logits = logits.masked_fill(~allowed, -math.inf)
    # exp relative to the row maximum (cancelled by D^-1; detached, it adds no gradient terms)
    row_max = logits.detach().amax(dim=-1, keepdim=True)
    row_max = row_max.masked_fill(~torch.isfinite(row_max), 0.0)
    weights = torch.exp(logits - row_max)  # (0, 1] where allowed, 0 elsewhere
    if k + 1 <= logits.shape[-1]:  # else every row has at most k entries: all kept
        threshold = weights.detach().topk(k + 1, dim=-1).values[..., -1:]
        weights = weights.masked_fill(weights <= threshold, 0.0)
    row_sum = weights.sum(dim=-1, keepdim=True)
    return weights / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum))


def affinity(x: torch.Tensor, is_query: torch.Tensor, settings: GraphSettings,
             self_loops: bool = True) -> torch.Tensor:
    r"""The affinity A of one graph (supplementary eq. 10, with the H2FT masks): (..., N, d) keys
    v(x) (leading dimensions: graphs sharing the masks), (N,) bool queries (GFT: ignored) ->
    (..., N, N) A. :math:`S_{ij} = \exp(\cos(x_i, x_j) / \tau_i)` over the columns of
    :func:`neighbour_mask` (:math:`\tau_i`: tau_het in a query row, tau_hom in a gallery row),
    cut and normalised by :func:`row_weights`; ``self_loops=False`` (CRI) removes the diagonal
    before the top-k."""
    is_query = settings.queries(is_query).to(x.device)
    tau = torch.full(is_query.shape, float(settings.tau_hom), dtype=x.dtype, device=x.device)
    tau = tau.masked_fill(is_query, float(settings.tau_het))
    logits = cosine_similarity(x) / tau[:, None]
    return row_weights(logits, settings.k, neighbour_mask(is_query, self_loops))


class CounterfactualRelation(nn.Module):
    r"""CRI: :math:`E[A^* X]`, the real features X transferred by the graph :math:`A^*` of
    counterfactual nodes :math:`X^*_i \sim N(k_i, c_i^2 I)`, built like the factual graph but
    without self-loops; t samples averaged. ``mean`` k (B, d; init 0) and ``std`` c (B, 1; init
    1, clamped at 0) belong to the node positions of the per-GPU training batch of B nodes."""

    def __init__(self, batch_size: int, feat_dim: int, num_samples: int = 10):
        super().__init__()
        self.batch_size, self.feat_dim, self.num_samples = batch_size, feat_dim, num_samples
        self.mean = nn.Parameter(torch.zeros(batch_size, feat_dim))
        self.std = nn.Parameter(torch.ones(batch_size, 1))

    def extra_repr(self) -> str:
        return (f"batch_size={self.batch_size}, feat_dim={self.feat_dim}, "
                f"num_samples={self.num_samples}")

    def sample_features(self) -> torch.Tensor:
        r"""(t, B, d) samples :math:`X^* = k + \max(c, 0)\,\epsilon` (reparameterised)."""
        eps = torch.randn((self.num_samples, self.batch_size, self.feat_dim),
                          dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std.clamp(min=0) * eps

    def forward(self, x: torch.Tensor, is_query: torch.Tensor, settings: GraphSettings
                ) -> torch.Tensor:
        """(B, d) real features, (B,) bool queries -> (B, d) :math:`E[A^* X]`."""
        graphs = affinity(self.sample_features(), is_query, settings, self_loops=False)
        return graphs.mean(dim=0).to(x.dtype) @ x  # the mean graph: (t, B, B) -> (B, B)

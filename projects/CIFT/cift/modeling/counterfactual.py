"""Counterfactual relation intervention (CRI) of CIFT."""

from __future__ import annotations

import torch
from torch import nn

from .graph import DEFAULT_K, DEFAULT_TAU_HET, DEFAULT_TAU_HOM, affinity

__all__ = ["CounterfactualRelation", "counterfactual_effect"]


class CounterfactualRelation(nn.Module):
    r"""Expected transfer through a counterfactual graph built from learned random features.

    Reference:
        Li et al. Counterfactual Intervention Feature Transfer for Visible-Infrared Person
        Re-identification. ECCV 2022 (CRI); docs/design.md §1.

    Node ``i`` of the batch gets counterfactual features :math:`X^*_i \sim N(k_i, c_i^2 I)` with a
    learned mean :math:`k_i` (``mean``, (B, d), init 0) and standard deviation :math:`c_i`
    (``std``, (B, 1), init 1, clamped to >= 0 when used; a negative value acts as 0). For each of
    ``t`` samples, drawn by reparameterisation :math:`X^* = k + \max(c, 0)\,\epsilon` so that
    gradients reach ``mean`` and ``std``, the graph :math:`A^*` is built from :math:`X^*` exactly
    like the factual one (:func:`~cift.modeling.graph.affinity`, same masks, temperatures and
    ``k``) but without self-loops, and applied to the **real** features:
    :math:`Y^* = A^* X`. The output is the sample mean
    :math:`\frac{1}{t} \sum_s A^*_s X = \big(\frac{1}{t} \sum_s A^*_s\big) X`, the latter form
    being the one computed.

    The parameters belong to node *positions* of a fixed per-GPU training batch (the sampler's
    ``[P x K visible ; P x K infrared]`` layout, B = P * K * 2), as in the authors' code: node ``i``
    of every batch shares the same Gaussian. A batch of any other size has no parameters to use and
    is rejected with a ValueError naming both sizes (the training sampler is infinite, so every
    batch is full). The module is a training-time branch; inference does not use it.

    The noise :math:`\epsilon` is drawn with a single ``torch.randn((t, B, d))`` call on the
    parameters' device, so results are reproducible under ``torch.manual_seed``.

    Args:
        batch_size (int): B, the per-GPU training batch size.
        feat_dim (int): d, the dimension of the features the graph is built on.
        num_samples (int): t, counterfactual graphs averaged per forward.
    """

    def __init__(self, batch_size: int, feat_dim: int, num_samples: int = 10):
        super().__init__()
        for name, value in (
            ("batch_size", batch_size),
            ("feat_dim", feat_dim),
            ("num_samples", num_samples),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.batch_size = batch_size
        self.feat_dim = feat_dim
        self.num_samples = num_samples
        self.mean = nn.Parameter(torch.zeros(batch_size, feat_dim))
        self.std = nn.Parameter(torch.ones(batch_size, 1))

    def extra_repr(self) -> str:
        return (
            f"batch_size={self.batch_size}, feat_dim={self.feat_dim}, "
            f"num_samples={self.num_samples}"
        )

    def sample_features(self) -> torch.Tensor:
        """Draw ``t`` counterfactual feature matrices.

        Returns:
            torch.Tensor: (t, B, d) :math:`X^*`, differentiable in ``mean`` and ``std``.
        """
        eps = torch.randn(
            (self.num_samples, self.batch_size, self.feat_dim),
            dtype=self.mean.dtype,
            device=self.mean.device,
        )
        return self.mean + self.std.clamp(min=0) * eps

    def forward(
        self,
        x: torch.Tensor,
        is_query: torch.Tensor,
        tau_hom: float = DEFAULT_TAU_HOM,
        tau_het: float = DEFAULT_TAU_HET,
        k: int = DEFAULT_K,
    ) -> torch.Tensor:
        """Expected counterfactual transfer :math:`E[Y^*]`.

        Args:
            x (torch.Tensor): (B, d) real node features (the branch's BNNeck output).
            is_query (torch.Tensor): (B,) bool, the training mode's query nodes.
            tau_hom, tau_het, k: as in :func:`~cift.modeling.graph.affinity`.

        Returns:
            torch.Tensor: (B, d) :math:`E[Y^*]`, dtype of ``x``.
        """
        if x.dim() != 2 or not x.is_floating_point():
            raise ValueError(
                f"x must be a floating (B, d) tensor, got shape {tuple(x.shape)} and {x.dtype}"
            )
        if x.shape[0] != self.batch_size:
            raise ValueError(
                f"CounterfactualRelation has parameters for a batch of {self.batch_size} nodes "
                f"(the per-GPU training batch size) but got a batch of {x.shape[0]}"
            )
        if x.shape[1] != self.feat_dim:
            raise ValueError(
                f"CounterfactualRelation was built for {self.feat_dim}-d features "
                f"but got {x.shape[1]}-d features"
            )
        graphs = affinity(
            self.sample_features(),
            is_query,
            tau_hom=tau_hom,
            tau_het=tau_het,
            k=k,
            self_loops=False,
        )  # (t, B, B)
        return graphs.mean(dim=0).to(x.dtype) @ x


def counterfactual_effect(y: torch.Tensor, y_cf: torch.Tensor) -> torch.Tensor:
    """Total indirect effect of the graph, ``Y_TIE = Y - E[Y*]``.

    Args:
        y (torch.Tensor): (B, d) factual transferred features ``A X``.
        y_cf (torch.Tensor): (B, d) counterfactual ones, :class:`CounterfactualRelation`'s output.

    Returns:
        torch.Tensor: (B, d) ``y - y_cf``.
    """
    if y.shape != y_cf.shape:
        raise ValueError(
            f"y and y_cf must have the same shape, got {tuple(y.shape)} and {tuple(y_cf.shape)}"
        )
    return y - y_cf

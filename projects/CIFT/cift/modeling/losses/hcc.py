"""Heterogeneous centre contrastive (HCC) loss of CIFT (docs/design.md §1: means, floors)."""
from __future__ import annotations

import torch

__all__ = ["hcc_loss"]

# rho per level: 0.6 on Euclidean features, 6 on symmetric KL of the class distributions.
DEFAULT_MARGINS = {"euc": 0.6, "kl": 6.0}
# The authors' floors: squared distances before the root, probabilities before the log.
_SQ_DIST_FLOOR = 1e-12
_PROB_FLOOR = 1e-9


def hcc_loss(x: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor, level: str = "euc",
             margin: float | None = None) -> torch.Tensor:
    r"""Heterogeneous centre contrastive loss (supplementary eq. 6): (N, d) features ("euc") or
    (N, classes) logits ("kl") ``x``, (N,) integer ``pids``, (N,) bool ``is_visible`` -> scalar.

    With :math:`C_{m,k}` the batch mean of modality m and identity k (of ``x`` for "euc", of
    ``softmax(x)`` for "kl") and :math:`\bar m_i` the other modality than sample i's,
    :math:`L = \mathrm{mean}_{(i, c) \in P} D(x_i, C_c)
    + \mathrm{mean}_{(i, c) \in Q} \max(0, \rho - D(x_i, C_c))`, over the pull pairs
    :math:`P = \{(i, (\bar m_i, y_i))\}` (where that centre exists) and the push pairs
    :math:`Q = \{(i, (m, k)) : k \ne y_i\}`; a term without pairs is 0. D: the Euclidean
    distance ("euc"), or the symmetric KL :math:`KL(\bar q \Vert p) + KL(\bar p \Vert q)` whose
    barred (target) side is detached ("kl"). ``margin`` :math:`\rho`: None picks
    DEFAULT_MARGINS[level].
    """
    rho = DEFAULT_MARGINS[level] if margin is None else float(margin)
    if x.shape[0] == 0:
        return x.sum() * 0.0
    values = x.softmax(dim=1) if level == "kl" else x
    centres, centre_pids, centre_visible = _group_centres(values, pids, is_visible)
    dist = (_euclidean_distance if level == "euc" else _symmetric_kl)(values, centres)  # (N, G)
    same_id = pids[:, None] == centre_pids[None, :]
    other_modality = is_visible[:, None] != centre_visible[None, :]
    pull = _masked_mean(dist, same_id & other_modality)
    push = _masked_mean((rho - dist).clamp_min(0), ~same_id)
    return pull + push


def _group_centres(values: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, d) -> centres (G, d) of the (modality, identity) groups present, their identities
    (G,) and modality (G,) bool; averaged with a one-hot matrix (deterministic on the GPU)."""
    keys = torch.stack([is_visible.long(), pids.long()])  # (2, N)
    group_keys, group_of = torch.unique(keys, dim=1, return_inverse=True)  # (2, G), (N,)
    group_ids = torch.arange(group_keys.shape[1], device=values.device)
    membership = (group_ids[:, None] == group_of[None, :]).to(values.dtype)  # (G, N)
    centres = membership @ values / membership.sum(dim=1, keepdim=True)
    return centres, group_keys[1].to(pids.dtype), group_keys[0].bool()


def _euclidean_distance(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, d), (G, d) -> (N, G) distances, from the explicit difference (no cancellation)."""
    sq_dist = (x[:, None, :] - centres[None, :, :]).pow(2).sum(dim=2)
    return sq_dist.clamp_min(_SQ_DIST_FLOOR).sqrt()


def _symmetric_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(N, c) sample and (G, c) centre distributions -> (N, G) symmetric KL, each direction's
    target (first) distribution detached, log included."""
    log_p = p.clamp_min(_PROB_FLOOR).log()[:, None, :]  # (N, 1, c)
    log_q = q.clamp_min(_PROB_FLOOR).log()[None, :, :]  # (1, G, c)
    p_t, log_p_t = p.detach()[:, None, :], log_p.detach()
    q_t, log_q_t = q.detach()[None, :, :], log_q.detach()
    kl_q_p = (q_t * (log_q_t - log_p)).sum(dim=2)  # gradient reaches the sample
    kl_p_q = (p_t * (log_p_t - log_q)).sum(dim=2)  # gradient reaches the centre
    return kl_q_p + kl_p_q


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; 0 (still attached to the graph) when the mask is empty."""
    return values[mask].sum() / mask.sum().clamp_min(1)

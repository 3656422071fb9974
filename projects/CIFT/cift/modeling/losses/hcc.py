"""Heterogeneous centre contrastive (HCC) loss of CIFT."""

from __future__ import annotations

import torch

__all__ = ["hcc_loss"]

# rho per level: 0.6 on Euclidean features, 6 on symmetric KL of the class distributions.
DEFAULT_MARGINS = {"euc": 0.6, "kl": 6.0}

# Floors taken from the authors' code: the squared distance is clamped before the square root
# (finite gradient at zero distance) and probabilities are clamped before the logarithm.
_SQ_DIST_FLOOR = 1e-12
_PROB_FLOOR = 1e-9

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def hcc_loss(
    x: torch.Tensor,
    pids: torch.Tensor,
    is_visible: torch.Tensor,
    level: str = "euc",
    margin: float | None = None,
) -> torch.Tensor:
    r"""Heterogeneous centre contrastive loss.

    Reference:
        Li et al. Counterfactual Intervention Feature Transfer for Visible-Infrared Person
        Re-identification. ECCV 2022, supplementary material, eq. 6.

    The centre :math:`C_{m,k}` is the mean over the batch samples of modality ``m`` and identity
    ``k`` (of ``x`` for ``"euc"``, of ``p = softmax(x)`` for ``"kl"``); only groups present in the
    batch have a centre. With :math:`\bar m_i` the modality other than sample ``i``'s,

    .. math::

        L = \frac{1}{|P|} \sum_{(i, c) \in P} D(x_i, C_c)
          + \frac{1}{|Q|} \sum_{(i, c) \in Q} \max(0, \rho - D(x_i, C_c)),

    where the pull pairs are :math:`P = \{(i, (\bar m_i, y_i))\}` (a sample whose identity has no
    centre in the other modality has no pull pair) and the push pairs are
    :math:`Q = \{(i, (m, k)) : k \ne y_i, m \in \{vis, ir\}\}`. A term without pairs is 0. Each
    term is a mean over its pairs, as in the authors' code (eq. 6 writes a per-sample sum over
    the negative centres; with ``P x K`` per modality that only rescales the push term).

    Distances:

    - ``"euc"``: :math:`D(x, c) = \sqrt{\max(\lVert x - c \rVert^2, 10^{-12})}`.
    - ``"kl"``: :math:`D(p, q) = KL(\bar q \Vert p) + KL(\bar p \Vert q)`, the bar marking a
      detached target: :math:`\sum \bar q (\log \bar q - \log p)` sends gradient to the sample
      only and :math:`\sum \bar p (\log \bar p - \log q)` to the centre only, so each side gets
      one direction's gradient. Probabilities are clamped to :math:`\ge 10^{-9}` before ``log``.

    The value does not depend on the order of the batch.

    Args:
        x (torch.Tensor): (N, d) features for ``"euc"``, (N, num_classes) logits for ``"kl"``;
            floating point.
        pids (torch.Tensor): (N,) integer identity labels.
        is_visible (torch.Tensor): (N,) bool, True for visible, False for infrared samples.
        level (str): ``"euc"`` or ``"kl"``.
        margin (float, optional): :math:`\rho`; None picks 0.6 for ``"euc"`` and 6.0 for
            ``"kl"``.

    Returns:
        torch.Tensor: scalar loss, dtype and device of ``x``.
    """
    if level not in DEFAULT_MARGINS:
        raise ValueError(f"Unknown HCC level {level!r}; known levels: {sorted(DEFAULT_MARGINS)}")
    _check_inputs(x, pids, is_visible)
    rho = DEFAULT_MARGINS[level] if margin is None else float(margin)
    if x.shape[0] == 0:
        return x.sum() * 0.0

    values = x.softmax(dim=1) if level == "kl" else x
    centres, centre_pids, centre_visible = _group_centres(values, pids, is_visible)
    if level == "euc":
        dist = _euclidean_distance(values, centres)
    else:
        dist = _symmetric_kl(values, centres)

    same_id = pids[:, None] == centre_pids[None, :]
    other_modality = is_visible[:, None] != centre_visible[None, :]
    pull = _masked_mean(dist, same_id & other_modality)
    push = _masked_mean((rho - dist).clamp_min(0), ~same_id)
    return pull + push


def _check_inputs(x: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor) -> None:
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(
            f"x must be a floating (N, d) tensor, got shape {tuple(x.shape)} and {x.dtype}"
        )
    n = x.shape[0]
    if pids.shape != (n,) or pids.dtype not in _INTEGER_DTYPES:
        raise ValueError(
            f"pids must be an integer ({n},) tensor, got shape {tuple(pids.shape)} and {pids.dtype}"
        )
    if is_visible.shape != (n,) or is_visible.dtype != torch.bool:
        raise ValueError(
            f"is_visible must be a bool ({n},) tensor, "
            f"got shape {tuple(is_visible.shape)} and {is_visible.dtype}"
        )


def _group_centres(
    values: torch.Tensor, pids: torch.Tensor, is_visible: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Means of ``values`` (N, d) per (modality, identity) group present.

    Returns centres (G, d), their identities (G,) and their modality (G,) bool.
    """
    keys = torch.stack([is_visible.long(), pids.long()])  # (2, N)
    group_keys, group_of = torch.unique(keys, dim=1, return_inverse=True)  # (2, G), (N,)
    # One-hot averaging matrix rather than index_add_, which is nondeterministic on GPU.
    group_ids = torch.arange(group_keys.shape[1], device=values.device)
    membership = (group_ids[:, None] == group_of[None, :]).to(values.dtype)  # (G, N)
    centres = membership @ values / membership.sum(dim=1, keepdim=True)
    return centres, group_keys[1].to(pids.dtype), group_keys[0].bool()


def _euclidean_distance(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, d), (G, d) -> (N, G) Euclidean distances.

    The difference is formed explicitly instead of the authors' |x|^2 + |c|^2 - 2 x.c expansion,
    which cancels badly in float32 for close pairs; the floor before the root is theirs.
    """
    sq_dist = (x[:, None, :] - centres[None, :, :]).pow(2).sum(dim=2)
    return sq_dist.clamp_min(_SQ_DIST_FLOOR).sqrt()


def _symmetric_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(N, c) sample and (G, c) centre distributions -> (N, G) symmetric KL.

    Each direction detaches its target (first) distribution, log included.
    """
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

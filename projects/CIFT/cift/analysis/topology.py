r"""Quality of features and affinities: GR, Q_X / Q_Y, Q_A and the affinity error rate.

Reference:
    Li et al. Counterfactual Intervention Feature Transfer for Visible-Infrared Person
    Re-identification. ECCV 2022, supplementary material §1, eqs. 1-3.

Every measure works on a (R, M) matrix between R *row* samples and M *column* samples: the
square case (R = M, one set of samples against itself, the diagonal never counted) is the
supplementary's training-batch setting; the rectangular case (queries against a gallery) is the
test-time one. For row ``i``, the positives :math:`\mathcal{P}^i` are the allowed columns of
its identity and the negatives :math:`\mathcal{N}^i` the allowed columns of other identities
(see :func:`pair_masks`). A row without a positive or without a negative has no margin and no
order; it is left out of every average (and of the N that divides it). Functions accept torch
tensors or numpy arrays, compute in float64, keep leading batch dimensions of the matrix
(independent sets sharing the labels), and return tensors; ``float()`` gives a number.

D is the cosine distance ``1 - cos`` (the distance the protocols rank by), so for
L2-normalised features every margin lies in [-2, 2] and a set whose identities collapse to
mutually orthogonal points has Q = 1.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "AffinityErrors",
    "affinity_error_rate",
    "affinity_pair_order",
    "affinity_quality",
    "cosine_distance_matrix",
    "feature_quality",
    "grouping_margin",
    "pair_masks",
]

_NORM_FLOOR = 1e-12


def _tensor(x) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.double() if t.is_floating_point() else t


def cosine_distance_matrix(x, y=None) -> torch.Tensor:
    """``1 - cos(x_i, y_j)``.

    Args:
        x: (..., R, d) features.
        y: (..., M, d) features; default ``x``.

    Returns:
        torch.Tensor: (..., R, M) float64 distances in [0, 2].
    """
    x = _tensor(x)
    y = x if y is None else _tensor(y)
    xn = x / x.norm(dim=-1, keepdim=True).clamp_min(_NORM_FLOOR)
    yn = y / y.norm(dim=-1, keepdim=True).clamp_min(_NORM_FLOOR)
    return 1.0 - xn @ yn.transpose(-1, -2)


def pair_masks(row_pids, col_pids=None, allowed=None, device=None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Positive and negative columns of every row: :math:`\mathcal{P}^i`, :math:`\mathcal{N}^i`.

    Args:
        row_pids: (R,) identity of each row sample.
        col_pids: (M,) identity of each column sample; default ``row_pids`` (the square case,
            where the diagonal — a sample and itself — is neither positive nor negative).
        allowed: optional (R, M) bool, the columns each row may use (e.g. an H2FT query row
            sees only the gallery and itself); others are neither positive nor negative.
        device: where the masks are made (default: the device of ``row_pids``).

    Returns:
        tuple: (R, M) bool positives, (R, M) bool negatives.
    """
    rows = torch.as_tensor(row_pids, device=device).reshape(-1)
    square = col_pids is None
    cols = rows if square else torch.as_tensor(col_pids, device=rows.device).reshape(-1)
    same = rows[:, None] == cols[None, :]
    usable = torch.ones_like(same)
    if square:
        usable.fill_diagonal_(False)
    if allowed is not None:
        allowed = torch.as_tensor(allowed, dtype=torch.bool, device=rows.device)
        if allowed.shape != same.shape:
            raise ValueError(f"allowed must be ({same.shape[0]}, {same.shape[1]}) bool, "
                             f"got shape {tuple(allowed.shape)}")
        usable = usable & allowed
    return same & usable, ~same & usable


def grouping_margin(dist, row_pids, col_pids=None, allowed=None) -> torch.Tensor:
    r"""GR(X^i) (supplementary eq. 1): the mean margin between negative and positive distances.

    Eq. 1 defines one margin :math:`D(X^i, X^k) - D(X^i, X^j)` for every pair of a positive
    ``j`` and a negative ``k`` of sample ``i``; GR(X^i) is their mean over all
    :math:`|\mathcal{P}^i| \cdot |\mathcal{N}^i|` pairs, which equals the mean negative distance
    minus the mean positive distance:

    .. math::

        GR(X^i) = \frac{1}{|\mathcal{P}^i||\mathcal{N}^i|}
                  \sum_{j \in \mathcal{P}^i} \sum_{k \in \mathcal{N}^i} D_{ik} - D_{ij}
                = \overline{D_{i\mathcal{N}}} - \overline{D_{i\mathcal{P}}}.

    Args:
        dist: (..., R, M) distances D between row and column samples.
        row_pids, col_pids, allowed: as in :func:`pair_masks`.

    Returns:
        torch.Tensor: (..., R) float64 margins, NaN for rows without a positive or a negative.
    """
    dist = _tensor(dist)
    pos, neg = pair_masks(row_pids, col_pids, allowed, device=dist.device)
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)
    mean_pos = (dist * pos).sum(-1) / n_pos.clamp_min(1)
    mean_neg = (dist * neg).sum(-1) / n_neg.clamp_min(1)
    margin = mean_neg - mean_pos
    return margin.masked_fill((n_pos == 0) | (n_neg == 0), float("nan"))


def feature_quality(x, pids, gallery=None, gallery_pids=None, allowed=None) -> torch.Tensor:
    r"""Q_X or Q_Y (supplementary eq. 2): GR averaged over the samples, with cosine distance.

    .. math:: Q_X = \frac{1}{N} \sum_i GR(X^i),

    N counting the samples that have at least one positive and one negative (every sample of
    a P x K batch). Each sample weighs the same, whatever its number of pairs.

    Args:
        x: (..., R, d) features (the rows).
        pids: (R,) their identities.
        gallery: (..., M, d) column features; default ``x`` itself (diagonal excluded).
        gallery_pids: (M,) identities of ``gallery`` (required with it).
        allowed: optional (R, M) bool, as in :func:`pair_masks`.

    Returns:
        torch.Tensor: (...) float64 Q, NaN when no sample has both a positive and a negative.
    """
    if (gallery is None) != (gallery_pids is None):
        raise ValueError("gallery and gallery_pids go together")
    margins = grouping_margin(cosine_distance_matrix(x, gallery), pids, gallery_pids, allowed)
    return margins.nanmean(-1)


def affinity_quality(a, row_pids, col_pids=None, allowed=None) -> torch.Tensor:
    r"""Q_A (supplementary eq. 3): the share of samples whose every positive affinity exceeds
    every negative one.

    .. math::

        Q_A = \frac{|GA|}{N}, \qquad
        GA = \{ i : \min_{j \in \mathcal{P}^i} A^{i,j} > \max_{k \in \mathcal{N}^i} A^{i,k} \}.

    This is the reading of eq. 3's "A^{i,j} > A^{i,k}, j ∈ P^i, k ∈ N^i" as a condition on the
    sample, for all pairs at once, strict ``>`` as written: Q_A counts samples ("the ratio of
    samples' affinities belonging to that constraint"). The per-pair share
    (:func:`affinity_pair_order`) does not fit the supplementary's numbers: there Q_A = 0.16
    would be an affinity that prefers other identities (0.5 is chance), yet Q_Y passes 0.7; in
    the toy experiment at Q_X = 0.57 even a random affinity (pair share 0.5) gives Q_Y 0.49 and
    Q_Y crosses 0.7 between pair shares 0.5 and 0.92. Under the per-sample reading, 0.1 means
    that 1 sample in 10 ranks all its positives first while the others may still have mostly
    positive neighbours (docs/topology.md).

    Q_A depends only on the order of each row, so pass the *dense* affinity (no top-k; any
    increasing function of the similarities, e.g. the cosines, gives the same value). On a
    top-k affinity, every positive beyond the k kept entries ties with the dropped negatives
    at 0 and fails the strict test.

    Args:
        a: (..., R, M) affinities (or similarities) of row samples to column samples.
        row_pids, col_pids, allowed: as in :func:`pair_masks`.

    Returns:
        torch.Tensor: (...) float64 share in [0, 1], NaN when no row has both a positive and
        a negative.
    """
    a = _tensor(a)
    pos, neg = pair_masks(row_pids, col_pids, allowed, device=a.device)
    weakest_pos = a.masked_fill(~pos, float("inf")).amin(-1)
    strongest_neg = a.masked_fill(~neg, float("-inf")).amax(-1)
    valid = pos.any(-1) & neg.any(-1)
    good = (weakest_pos > strongest_neg) & valid
    return good.double().sum(-1) / valid.sum() if valid.any() else _nan_like(a)


def affinity_pair_order(a, row_pids, col_pids=None, allowed=None) -> torch.Tensor:
    r"""The per-pair reading of eq. 3, for comparison with :func:`affinity_quality`: per row
    the share of (positive j, negative k) pairs with :math:`A^{i,j} > A^{i,k}` (a per-row AUC,
    ties counting 1/2), averaged over the rows that have both.

    Args:
        a: (..., R, M) affinities; row_pids, col_pids, allowed: as in :func:`pair_masks`.

    Returns:
        torch.Tensor: (...) float64 in [0, 1] (0.5 for affinities unrelated to identity).
    """
    a = _tensor(a)
    pos, neg = pair_masks(row_pids, col_pids, allowed, device=a.device)
    # (..., R, M, M): pair (j, k) compared; O(R M^2) memory, meant for batch-sized matrices.
    wins = (torch.sign(a[..., :, :, None] - a[..., :, None, :]) + 1) / 2  # 1, 1/2 (tie), 0
    pairs = pos[:, :, None] & neg[:, None, :]
    n_pairs = pairs.sum((-1, -2))
    per_row = (wins * pairs).sum((-1, -2)) / n_pairs.clamp_min(1)
    valid = n_pairs > 0
    if not valid.any():
        return _nan_like(a)
    return (per_row * valid).sum(-1) / valid.sum()


class AffinityErrors(NamedTuple):
    """Affinity error rates, each the mean over rows with at least one edge (0 = all right)."""

    mass: torch.Tensor   # share of a row's (non-self) affinity mass on other identities
    edges: torch.Tensor  # share of a row's (non-self) edges that reach other identities


def affinity_error_rate(a, row_pids, col_pids=None, allowed=None, k: int | None = None,
                        ) -> AffinityErrors:
    r"""Average error ratio of an affinity matrix: how much of each row goes to wrong
    identities.

    A row's edges are its non-zero allowed entries other than itself (on a top-k affinity:
    the kept neighbours), or, with ``k``, its ``k`` largest allowed entries other than itself
    (for a dense affinity; ties broken by column order). Per row,

    .. math::

        e^{mass}_i = \frac{\sum_{j \in E_i, y_j \ne y_i} A^{i,j}}{\sum_{j \in E_i} A^{i,j}},
        \qquad e^{edges}_i = \frac{|\{j \in E_i : y_j \ne y_i\}|}{|E_i|},

    averaged over the rows with at least one edge (a row whose mass is all on itself has no
    edge). The self-loop is left out because it is always "right" and only dilutes the rate.

    Args:
        a: (..., R, M) non-negative affinities.
        row_pids, col_pids, allowed: as in :func:`pair_masks` (identity only matters here:
            rows need no negative).
        k: number of edges per row taken from a dense ``a``; None = every non-zero entry.

    Returns:
        AffinityErrors: (mass, edges), each a (...) float64 tensor in [0, 1], NaN when no row
        has an edge.
    """
    a = _tensor(a)
    pos, neg = pair_masks(row_pids, col_pids, allowed, device=a.device)
    usable = pos | neg
    if k is None:
        edges = usable & (a > 0)
    else:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        scores = a.masked_fill(~usable, float("-inf"))
        top = scores.topk(min(k, a.shape[-1]), dim=-1).indices
        edges = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True) & usable
    wrong = edges & neg
    n_edges = edges.sum(-1)
    mass = (a * edges).sum(-1)
    has = (n_edges > 0) & (mass > 0)
    mass_rate = (a * wrong).sum(-1) / mass.clamp_min(_NORM_FLOOR)
    edge_rate = wrong.sum(-1) / n_edges.clamp_min(1)
    count = has.sum(-1)

    def mean(rates: torch.Tensor) -> torch.Tensor:
        return torch.where(count > 0, (rates * has).sum(-1) / count.clamp_min(1),
                           torch.full_like(rates[..., 0], float("nan")))

    return AffinityErrors(mass=mean(mass_rate), edges=mean(edge_rate.double()))


def _nan_like(a: torch.Tensor) -> torch.Tensor:
    return torch.full(a.shape[:-2], float("nan"), dtype=torch.float64, device=a.device)


"""Query-gallery distances of the protocols: −q·gᵀ of the features as given, as the public
VI-ReID test scripts compute them, and the per-trial rankings of a task drawn from one product.

Numpy only. The public scripts (``test.py`` of Ye et al.'s Cross-Modal-Re-ID-baseline, AGW,
DEEN) hold query and gallery features in float64 arrays and score
``eval_sysu(-np.matmul(query_feat, gallery_feat.T), ...)`` per trial: no normalisation at that
point (their models L2-normalise in the test forward), so the ranking, ties included, is that of
the float64 inner product of the features as the model gave them. A product of the same arrays
has the same bits; a product computed on a larger matrix and sliced need not (BLAS kernels round
an entry differently by its place in the matrix), so the sliced rankings are only used where
rounding cannot change their order (:func:`order_is_certain`).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .row_sort import argsort_rows

__all__ = ["MAX_UNION_ENTRIES", "RAW_DTYPE", "PairwiseRankings", "certain_rows", "l2_normalise",
           "negative_inner_product", "order_is_certain", "trial_rankings", "trial_union"]

# Precision of the raw features' product: the public scripts' feature arrays are float64.
RAW_DTYPE = np.float64
# Largest (queries x gallery items) product of a task's trials computed at once, in entries.
MAX_UNION_ENTRIES = 2**27
# Unit roundoff of float64.
_UNIT_ROUNDOFF = 2.0**-53
# Rows checked at once (bounds the temporaries of the rounding check).
_BLOCK = 1024

# (trial query indices, trial gallery indices) into the feature rows
Trial = tuple[np.ndarray, np.ndarray]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Feature vectors (the last axis) scaled to unit length: (..., d) -> (..., d), same
    dtype."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12).astype(x.dtype)


def negative_inner_product(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """−q·gᵀ in the arrays' own precision: (Q, d), (G, d) -> (Q, G), smaller is closer.

    The public scripts' distance (``-np.matmul(query_feat, gallery_feat.T)``): a cosine distance
    up to a constant when the rows have unit length.
    """
    return -(q @ g.T)


def product_error_bound(q_norms: np.ndarray, g_max_norm: float, dim: int) -> np.ndarray:
    """Largest difference between two float64 evaluations of q_i·g_j in any summation order
    (with or without fused multiply-adds): 2 γ_d |q_i| max_j |g_j|, γ_d = d u / (1 − d u), u the
    float64 unit roundoff; (Q,) -> (Q,)."""
    gamma = dim * _UNIT_ROUNDOFF / (1.0 - dim * _UNIT_ROUNDOFF)
    return 2.0 * gamma * q_norms * g_max_norm


def certain_rows(dist: np.ndarray, order: np.ndarray, q_norms: np.ndarray, g_max_norm: float,
                 dim: int) -> np.ndarray:
    """Which rows every float64 evaluation of the same −q·gᵀ ranks as ``order`` does.

    A row is certain when its sorted distances are further apart than twice the rounding bound
    of :func:`product_error_bound` (times 2 for margin): no other summation order can then swap
    two of them. Exact ties and near-ties make a row uncertain. Dropping columns keeps a row
    certain (the gaps between the remaining values only grow).

    Args:
        dist: (Q, G) float64 distances. order: (Q, G) ``np.argsort(dist, axis=1)``.
        q_norms: (Q,) L2 norms of the query rows. g_max_norm: the largest gallery row norm.
        dim: d.
    Returns:
        (Q,) bool.
    """
    if dist.shape[1] < 2:
        return np.ones(dist.shape[0], dtype=bool)
    gaps = np.empty(dist.shape[0])
    for start in range(0, dist.shape[0], _BLOCK):  # bounded temporaries on large products
        rows = slice(start, start + _BLOCK)
        ranked = np.take_along_axis(dist[rows], order[rows], axis=1)
        gaps[rows] = np.diff(ranked, axis=1).min(axis=1)
    return gaps > 4.0 * product_error_bound(q_norms, g_max_norm, dim)


def order_is_certain(dist: np.ndarray, order: np.ndarray, q_norms: np.ndarray,
                     g_norms: np.ndarray, dim: int) -> bool:
    """Whether every row of ``order`` is certain (:func:`certain_rows`); g_norms: (G,)."""
    if dist.shape[0] == 0:
        return True
    return bool(certain_rows(dist, order, q_norms, float(g_norms.max()), dim).all())


def trial_union(trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct query indices and gallery indices of (q, g) trials."""
    return (np.unique(np.concatenate([q for q, _ in trials])),
            np.unique(np.concatenate([g for _, g in trials])))


class PairwiseRankings:
    """−q·gᵀ of every (query, gallery item) pair that some trials use, computed once as one
    product, and each trial's distances sliced from it.

    A trial's ranking comes from the product when no rounding can change it
    (:func:`certain_rows`): read off the product's own sorted rows for a large gallery (a row
    that is certain over every column stays certain over a trial's), or sorted from the slice.
    Otherwise the trial's own product of its rows (the public scripts' arrays: the trial's
    queries in order, its gallery in draw order) replaces it, so the result equals that
    product's ranking either way.
    """

    def __init__(self, x: np.ndarray, trials: Sequence[Trial],
                 union: tuple[np.ndarray, np.ndarray] | None = None):
        """x: (N, d) features; trials: (q, g) index arrays into x; union: their
        :func:`trial_union` when the caller has it."""
        self.x = x
        self.queries, self.gallery = trial_union(trials) if union is None else union
        self.union = negative_inner_product(x[self.queries], x[self.gallery])
        self.norms = np.linalg.norm(x, axis=1)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def shared(cls, x: np.ndarray, trials: Sequence[Trial]) -> PairwiseRankings | None:
        """One product for several trials; None for a single trial or a product of more than
        MAX_UNION_ENTRIES entries (each trial then gets its own)."""
        if len(trials) < 2:
            return None
        union = trial_union(trials)
        fits = union[0].size * union[1].size <= MAX_UNION_ENTRIES
        return cls(x, trials, union) if fits else None

    def sorted_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The product's argsort per row (int32) and which rows are certain (computed once)."""
        if self._sorted is None:
            order = argsort_rows(self.union)
            certain = certain_rows(self.union, order, self.norms[self.queries],
                                   float(self.norms[self.gallery].max()), self.x.shape[1])
            self._sorted = order.astype(np.int32), certain
        return self._sorted

    def _rows(self, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`matrix`'s rows `rows` (the matrix itself when they are all of them, in order)."""
        if rows.size == self.queries.size and (rows == np.arange(rows.size)).all():
            return matrix
        return np.take(matrix, rows, axis=0)

    def ranking(self, q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(Q, G) distances of one trial and their ``np.argsort(axis=1)`` (None when the
        trial's own product was computed: the metric sorts it)."""
        rows, cols = np.searchsorted(self.queries, q), np.searchsorted(self.gallery, g)
        dist = np.take(self._rows(self.union, rows), cols, axis=1)
        # reading a trial's order off the sorted product costs a pass over all its columns:
        # worth it for galleries of a quarter of them or more (sorting the slice is dearer)
        if 4 * cols.size >= self.gallery.size and np.unique(cols).size == cols.size:
            order, certain = self.sorted_rows()
            if certain[rows].all():
                position = np.full(self.gallery.size, -1, dtype=np.int32)
                position[cols] = np.arange(cols.size)
                ranked = position[self._rows(order, rows)]
                return dist, ranked[ranked >= 0].reshape(rows.size, cols.size)
        order = argsort_rows(dist)
        if order_is_certain(dist, order, self.norms[q], self.norms[g], self.x.shape[1]):
            return dist, order
        return negative_inner_product(self.x[q], self.x[g]), None


def trial_rankings(x: np.ndarray, trials: Sequence[Trial],
                   shared: PairwiseRankings | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(distances, argsort order or None) of each trial of raw features ``x`` (N, d), float64.

    Several trials are sliced from one product (``shared``, or one built for them when it is
    small enough, see :class:`PairwiseRankings`); a single trial, or trials whose product is too
    large, get their own products.
    """
    if shared is None:
        shared = PairwiseRankings.shared(x, trials)
    for q, g in trials:
        yield shared.ranking(q, g) if shared is not None else (
            negative_inner_product(x[q], x[g]), None)

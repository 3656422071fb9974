"""Top-R scoring of the VI-ReID protocols: the CMC and a truncated mAP of SYSU-MM01, RegDB and
LLCM from each query's nearest gallery items, for galleries too large for a distance matrix.

Pure numpy. The nearest items come from a caller-supplied search (:data:`Search`: torch, faiss,
...); the camera rules and the CMC are those of :mod:`cift.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from .metrics import (
    Group,
    GroupsOf,
    check_cameras,
    check_max_rank,
    first_occurrences,
    identity_cmc,
    llcm_groups,
    sysu_groups,
)

__all__ = ["Search", "evaluate_llcm_top_r", "evaluate_regdb_top_r", "evaluate_sysu_top_r"]

# search(rows, columns, n): the n (cut to the candidates) gallery items nearest to each query
# of `rows`, closest first, as an (len(rows), n) int array. Candidates are the gallery items
# `columns` (indices into the gallery; the result then indexes `columns`), or every gallery
# item when `columns` is None.
Search = Callable[[np.ndarray, "np.ndarray | None", int], np.ndarray]


def evaluate_sysu_top_r(search: Search, top_r: int, q_pids: np.ndarray, g_pids: np.ndarray,
                        q_camids: np.ndarray, g_camids: np.ndarray, max_rank: int = 20,
                        cmc_mode: str = "identity") -> tuple[np.ndarray, float]:
    """:func:`~cift.evaluation.metrics.evaluate_sysu` from each query's ``top_r`` nearest
    gallery images instead of a distance matrix: for large galleries, where only the top of the
    ranking is needed.

    The CMC is the same as ``evaluate_sysu``'s (ties aside): a query whose top-``top_r``
    list has no match and holds fewer gallery identities than the CMC is long is searched again,
    deeper, until its rank is known. AP is truncated at ``top_r``: the precision at each
    correct match within the first ``top_r`` kept images, divided by the query's number of
    matches in the whole kept gallery. It equals AP when every match is within the first
    ``top_r`` (always when ``top_r`` >= the gallery size), and is smaller otherwise. mINP needs
    the last match's rank and is not computed.

    Args:
        search: nearest gallery items of queries (see :data:`Search`), e.g. a faiss index.
        top_r: ranked gallery images per query, >= 1.
        q_pids, g_pids, q_camids, g_camids, max_rank, cmc_mode: as ``evaluate_sysu``.

    Returns:
        cmc: as ``evaluate_sysu``.
        mAP_at_r: mean truncated AP over the queries with a match.
    """
    return _top_r_with_cameras(sysu_groups, search, top_r, q_pids, g_pids, q_camids, g_camids,
                               max_rank, cmc_mode)


def evaluate_regdb_top_r(
    search: Search, top_r: int, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20
) -> tuple[np.ndarray, float]:
    """:func:`~cift.evaluation.metrics.evaluate_regdb` (image-level CMC, nothing removed) from
    top-``top_r`` lists; CMC and truncated AP as :func:`evaluate_sysu_top_r`."""
    q_pids, g_pids = _check_lists(top_r, q_pids, g_pids, max_rank)
    groups = [(np.arange(q_pids.size), None)]
    return _evaluate_top_r(search, top_r, q_pids, g_pids, groups, max_rank, identity_cmc=False)


def evaluate_llcm_top_r(search: Search, top_r: int, q_pids: np.ndarray, g_pids: np.ndarray,
                        q_camids: np.ndarray, g_camids: np.ndarray, max_rank: int = 20,
                        cmc_mode: str = "identity") -> tuple[np.ndarray, float]:
    """:func:`~cift.evaluation.metrics.evaluate_llcm` (a query drops its identity's images of
    its camera) from top-``top_r`` lists; CMC (either ``cmc_mode``) and truncated AP as
    :func:`evaluate_sysu_top_r`."""
    return _top_r_with_cameras(llcm_groups, search, top_r, q_pids, g_pids, q_camids, g_camids,
                               max_rank, cmc_mode)


def _top_r_with_cameras(groups_of: GroupsOf, search: Search, top_r: int, q_pids: np.ndarray,
                        g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray,
                        max_rank: int, cmc_mode: str) -> tuple[np.ndarray, float]:
    """CMC and truncated mAP of a protocol whose queries drop gallery items by camera
    (``groups_of``); arguments as :func:`evaluate_sysu_top_r`."""
    q_pids, g_pids = _check_lists(top_r, q_pids, g_pids, max_rank)
    q_camids, g_camids = check_cameras((q_pids.size, g_pids.size), q_camids, g_camids)
    groups = groups_of(q_pids, g_pids, q_camids, g_camids)
    return _evaluate_top_r(search, top_r, q_pids, g_pids, groups, max_rank,
                           identity_cmc(cmc_mode))


def _check_lists(top_r: int, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """1-D identity arrays, top_r >= 1 and max_rank >= 1, checked."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    if q_pids.ndim != 1 or g_pids.ndim != 1:
        raise ValueError(f"q_pids and g_pids must be 1-D, got shapes {q_pids.shape} and "
                         f"{g_pids.shape}")
    if isinstance(top_r, bool) or not isinstance(top_r, (int, np.integer)) or top_r < 1:
        raise ValueError(f"top_r must be an int >= 1, got {top_r!r}")
    check_max_rank(max_rank)
    return q_pids, g_pids


def _evaluate_top_r(
    search: Search,
    top_r: int,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    groups: Iterable[Group],
    max_rank: int,
    identity_cmc: bool,
) -> tuple[np.ndarray, float]:
    """CMC and truncated mAP from ranked lists (arguments as the distance-matrix
    ``metrics._evaluate``, plus the search and the list length)."""
    num_q, num_g = q_pids.size, g_pids.size
    g_unique, g_labels = np.unique(g_pids, return_inverse=True)
    g_labels = g_labels.reshape(-1)
    # Label of each query's identity among the gallery's, or -1 when the gallery has none.
    q_slot = np.clip(np.searchsorted(g_unique, q_pids), 0, max(g_unique.size - 1, 0))
    q_labels = np.where(g_unique[q_slot] == q_pids, q_slot, -1) if g_unique.size else \
        np.full(num_q, -1)

    ap, valid = np.zeros(num_q), np.zeros(num_q, dtype=bool)
    # 0-based rank of the first match (see identity_cmc); num_g when it is beyond every list
    rank = np.full(num_q, num_g, dtype=np.int64)
    lengths = set()
    plans = []
    for rows, keep in groups:
        if rows.size == 0:
            continue
        counts = np.bincount(g_labels if keep is None else g_labels[keep],
                             minlength=g_unique.size)
        kept = int(counts.sum())
        length = min(max_rank, np.count_nonzero(counts) if identity_cmc else kept)
        lengths.add(length)
        num_rel = np.where(q_labels[rows] >= 0, counts[np.maximum(q_labels[rows], 0)], 0)
        valid[rows] = num_rel > 0
        if kept:  # a group that keeps no gallery item has no valid query
            plans.append(_Plan(rows, keep, kept, length, num_rel))

    for plan, order in zip(plans, _first_lists(search, top_r, plans, num_g), strict=True):
        rows, rel = plan.rows, plan.num_rel
        matches = g_pids[order] == q_pids[rows, None]
        hits = matches.cumsum(1)
        ap[rows] = np.where(rel > 0, (hits / np.arange(1.0, order.shape[1] + 1.0) * matches
                                      ).sum(1) / np.maximum(rel, 1), 0.0)
        # Rows whose list has no match and too few identities (images) for the CMC: deeper.
        depth, todo = order.shape[1], np.arange(rows.size)
        while True:
            found, reached = _first_match(order, matches, g_labels if identity_cmc else None,
                                          num_g)
            rank[rows[todo]] = found
            more = (rel[todo] > 0) & (found == num_g) & (reached < plan.length)
            if not more.any() or depth >= plan.kept:
                break
            depth, todo = min(2 * depth, plan.kept), todo[more]
            order = _kept_lists(search, plan, rows[todo], depth, num_g)
            matches = g_pids[order] == q_pids[rows[todo], None]

    if not valid.any():
        raise ValueError("no query has a matching identity in the gallery")
    hits = valid[:, None] & (rank[:, None] <= np.arange(max(lengths)))
    return hits.sum(0).astype(np.float32) / float(valid.sum()), float(np.mean(ap[valid]))


class _Plan(NamedTuple):
    """A query group to rank: its rows, kept gallery items (mask, or None for all) and their
    number, its CMC length, and each row's number of matches among the kept items."""

    rows: np.ndarray
    keep: np.ndarray | None
    kept: int
    length: int
    num_rel: np.ndarray


def _first_lists(search: Search, top_r: int, plans: list[_Plan], num_g: int
                 ) -> list[np.ndarray]:
    """Each group's (rows, min(top_r, kept)) first lists.

    Groups dropping at most ``top_r`` gallery items share one search of the whole gallery,
    ``top_r`` + (their largest drop) deep, and each filters out its own dropped items (LLCM has
    a group per query identity and camera, each dropping a few images); a group dropping more
    searches only its kept items (SYSU's camera-3 queries drop all of camera 2).
    """
    lists: list[np.ndarray | None] = [None] * len(plans)
    shared = [i for i, plan in enumerate(plans) if num_g - plan.kept <= top_r]
    for i in set(range(len(plans))) - set(shared):
        lists[i] = _kept_lists(search, plans[i], plans[i].rows, min(top_r, plans[i].kept), num_g)
    if shared:
        depth = min(num_g, top_r + max(num_g - plans[i].kept for i in shared))
        order = search(np.concatenate([plans[i].rows for i in shared]), None, depth)
        bounds = np.cumsum([0] + [plans[i].rows.size for i in shared])
        for i, start, stop in zip(shared, bounds[:-1], bounds[1:], strict=True):
            lists[i] = _drop(order[start:stop], plans[i].keep, min(top_r, plans[i].kept))
    return lists


def _kept_lists(search: Search, plan: _Plan, rows: np.ndarray, n: int, num_g: int
                ) -> np.ndarray:
    """(len(rows), n) gallery indices: each query's (rows of the group ``plan``) n nearest
    gallery items among those the group keeps, closest first.

    When few items are dropped, the whole gallery is searched n + dropped deep and the dropped
    items are filtered out (every row keeps at least n); otherwise only the kept items are
    searched.
    """
    if plan.keep is None:
        return search(rows, None, n)
    dropped = num_g - plan.kept
    if dropped <= n:
        return _drop(search(rows, None, min(n + dropped, num_g)), plan.keep, n)
    columns = np.flatnonzero(plan.keep)
    return columns[search(rows, columns, n)]


def _drop(order: np.ndarray, keep: np.ndarray | None, n: int) -> np.ndarray:
    """The first n items of each ranked row that ``keep`` marks (None: all), in order; every
    row must hold at least n of them."""
    if keep is None:
        return order[:, :n]
    kept_first = np.argsort(~keep[order], axis=1, kind="stable")[:, :n]
    return np.take_along_axis(order, kept_first, 1)


def _first_match(order: np.ndarray, matches: np.ndarray, g_labels: np.ndarray | None,
                 not_found: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each row's first match within its ranked list, and how deep the list reaches.

    Args:
        order: (n, k) gallery indices, closest first.
        matches: (n, k) bool, the query's identity at that place.
        g_labels: (num_gallery,) gallery identity labels for an identity-level rank; None for an
            image-level one.
        not_found: the rank given to a row without a match.
    Returns:
        found: (n,) identities (images) before the first match, ``not_found`` without a match.
        reached: (n,) distinct identities (images) the row's list holds.
    """
    n, k = order.shape
    found = np.argmax(matches, axis=1)
    reached = np.full(n, k)
    if g_labels is not None:
        by_label, first = first_occurrences(g_labels[order])
        found = (first & (by_label < found[:, None])).sum(1)
        reached = first.sum(1)
    return np.where(matches.any(1), found, not_found), reached

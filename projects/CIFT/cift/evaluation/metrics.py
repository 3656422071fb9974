"""Ranking metrics of the VI-ReID protocols: CMC, mAP and mINP of a query-gallery distance
matrix for SYSU-MM01, RegDB and LLCM.

Pure numpy. The functions reproduce the public reference code, including its ranking ties and
its per-identity CMC: ``eval_sysu`` and ``eval_regdb`` of Ye et al.
(https://github.com/mangye16/Cross-Modal-Re-ID-baseline, also used by AGW and DEEN), and
``eval_llcm`` of Zhang and Wang (https://github.com/ZYK100/LLCM). Which gallery items a query
drops (the protocol's camera rule) is one function per protocol (:func:`sysu_groups`,
:func:`llcm_groups`), shared with the top-R scoring of :mod:`cift.evaluation.top_r`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .row_sort import argsort_rows

__all__ = ["CMC_MODES", "evaluate_llcm", "evaluate_regdb", "evaluate_sysu"]

# Cameras 2 (visible) and 3 (infrared) film the same place, so a camera-3 query ignores camera 2.
_SAME_PLACE = {3: 2}
# Query rows ranked per block, to bound memory on large query sets.
_BLOCK = 1024
# CMC variants of SYSU-MM01 and LLCM: "identity" counts a gallery identity once, at its first
# ranked image (the reference code: AGW, DEEN, LLCM); "image" counts every gallery image (the
# CIFT authors' eval(), RegDB's CMC). R1, AP and INP are the same under both.
CMC_MODES = ("identity", "image")


def identity_cmc(cmc_mode: str) -> bool:
    """True for the identity-level CMC; ValueError naming the allowed modes otherwise."""
    if cmc_mode not in CMC_MODES:
        raise ValueError(f"cmc_mode must be one of {CMC_MODES}, got {cmc_mode!r}")
    return cmc_mode == "identity"


def evaluate_sysu(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                  q_camids: np.ndarray, g_camids: np.ndarray, max_rank: int = 20,
                  cmc_mode: str = "identity", order: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float, float]:
    """SYSU-MM01 CMC, mAP and mINP of a query-gallery distance matrix.

    Each query ranks the gallery by ``np.argsort(distmat, axis=1)`` (ties as numpy breaks them);
    a camera-3 query then drops the camera-2 gallery images. The CMC counts each gallery identity
    once: only the first image of every identity in the remaining ranking is kept, and ``cmc[k]``
    is 1 when the query identity is among the first ``k + 1`` of those. AP (mean precision at
    each correct match) and INP (number of matches / 1-based rank of the last match) use the
    remaining ranking without that de-duplication. Queries without a match are skipped.
    ``cmc_mode="image"`` gives the CIFT authors' image-level CMC instead: ``cmc[k]`` is 1 when a
    gallery image of the query identity is among the first ``k + 1`` remaining images.

    Args:
        distmat: (num_query, num_gallery) distances, smaller is closer.
        q_pids: (num_query,) query identities.
        g_pids: (num_gallery,) gallery identities.
        q_camids: (num_query,) query cameras (3 or 6).
        g_camids: (num_gallery,) gallery cameras.
        max_rank: CMC length; like the reference, cut to the number of gallery identities a
            query keeps when that is smaller (so never longer than the gallery); image-level:
            cut to the number of gallery images it keeps.
        cmc_mode: "identity" (default) or "image", see above.
        order: ``np.argsort(distmat, axis=1)`` when the caller has it already (not checked).

    Returns:
        cmc: (max_rank,) float32, fraction of valid queries matched within each rank (shorter
            when cut, see ``max_rank``).
        mAP: mean AP over valid queries.
        mINP: mean INP over valid queries.

    Raises:
        ValueError: on mismatched shapes or when no query has a match. Where the two query
            groups (camera 3, others) keep different numbers of gallery identities, fewer than
            ``max_rank``, the reference code fails; here the CMC runs to the longer count.
    """
    return _evaluate_with_cameras(sysu_groups, distmat, q_pids, g_pids, q_camids, g_camids,
                                  max_rank, cmc_mode, order)


def evaluate_regdb(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20,
    order: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """RegDB CMC, mAP and mINP of a query-gallery distance matrix (either direction).

    Each query ranks the whole gallery by ``np.argsort(distmat, axis=1)`` (ties as numpy breaks
    them); nothing is removed, since query and gallery come from different cameras. The CMC is
    image-level: ``cmc[k]`` is 1 when a gallery image of the query identity is among the first
    ``k + 1`` images. AP and INP as in :func:`evaluate_sysu`. Queries without a match are
    skipped (they never occur on the standard splits).

    Args:
        distmat: (num_query, num_gallery) distances, smaller is closer; visible queries and
            thermal gallery for visible→thermal, the transpose's roles for thermal→visible.
        q_pids: (num_query,) query identities.
        g_pids: (num_gallery,) gallery identities.
        max_rank: CMC length, cut to the gallery size when that is smaller (as the reference).
        order: as in :func:`evaluate_sysu`.

    Returns:
        cmc: (min(max_rank, num_gallery),) float32, fraction of valid queries matched within
            each rank.
        mAP: mean AP over valid queries.
        mINP: mean INP over valid queries.

    Raises:
        ValueError: on mismatched shapes, ``max_rank < 1``, or when no query has a match.
    """
    distmat, q_pids, g_pids = _check_ranking(distmat, q_pids, g_pids, max_rank)
    groups = [(np.arange(distmat.shape[0]), None)]
    return _evaluate(distmat, q_pids, g_pids, groups, max_rank, identity_cmc=False, order=order)


def evaluate_llcm(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                  q_camids: np.ndarray, g_camids: np.ndarray, max_rank: int = 20,
                  cmc_mode: str = "identity", order: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float, float]:
    """LLCM CMC, mAP and mINP of a query-gallery distance matrix (either direction).

    As :func:`evaluate_sysu` (argsort ties, identity-level CMC that keeps the first image of each
    gallery identity, AP and INP on the plain ranking, queries without a match skipped, the same
    ``max_rank`` cut and failure), except for what a query drops: the gallery images of its own
    identity taken by its own camera. Camera k of the visible and of the infrared images is the
    same camera, so the two modalities' camids compare.

    Args:
        distmat: (num_query, num_gallery) distances, smaller is closer. Which images are the
            queries in each direction of the reference script: see
            :func:`cift.evaluation.galleries.sample_llcm_gallery`.
        q_pids: (num_query,) query identities.
        g_pids: (num_gallery,) gallery identities.
        q_camids: (num_query,) query cameras.
        g_camids: (num_gallery,) gallery cameras.
        max_rank: CMC length, cut as in :func:`evaluate_sysu`.
        cmc_mode: "identity" (default, the reference) or "image" (every gallery image counts,
            as :func:`evaluate_sysu` with ``cmc_mode="image"``).
        order: as in :func:`evaluate_sysu`.

    Returns:
        cmc, mAP, mINP as :func:`evaluate_sysu`.

    Raises:
        ValueError: on mismatched shapes, ``max_rank < 1`` or when no query has a match. Where
            queries keep different numbers of gallery identities, fewer than ``max_rank``, the
            reference fails and the CMC here runs to the largest count. The reference also
            fails when valid queries keep
            different numbers of gallery *images*, fewer than ``max_rank`` (only possible with
            a gallery smaller than ``max_rank``), in an image-level CMC it computes and
            discards; this returns the result instead.
    """
    return _evaluate_with_cameras(llcm_groups, distmat, q_pids, g_pids, q_camids, g_camids,
                                  max_rank, cmc_mode, order)


# (query rows, kept gallery items or None for all): every query of a group drops the same items.
Group = tuple[np.ndarray, "np.ndarray | None"]


# groups_of(q_pids, g_pids, q_camids, g_camids): a protocol's camera rule as query groups.
GroupsOf = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Iterable[Group]]


def sysu_groups(q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                g_camids: np.ndarray) -> list[Group]:
    """SYSU-MM01: camera-3 queries drop the camera-2 gallery images; the other queries keep
    every one (identities play no part)."""
    return [(np.flatnonzero(q_camids == 3), g_camids != _SAME_PLACE[3]),
            (np.flatnonzero(q_camids != 3), None)]


def llcm_groups(q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                g_camids: np.ndarray) -> Iterator[Group]:
    """LLCM: one group per query (identity, camera); it drops that identity's images of that
    camera."""
    _, pid_codes = np.unique(q_pids, return_inverse=True)
    _, cam_codes = np.unique(q_camids, return_inverse=True)
    keys = pid_codes.reshape(-1) * (int(cam_codes.max(initial=0)) + 1) + cam_codes.reshape(-1)
    by_key = np.argsort(keys, kind="stable")
    return (
        (rows, (g_pids != q_pids[rows[0]]) | (g_camids != q_camids[rows[0]]))
        for rows in np.split(by_key, np.flatnonzero(np.diff(keys[by_key])) + 1)
        if rows.size
    )


def _check_ranking(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays of a ranking problem, checked: (num_query, num_gallery), (num_query,),
    (num_gallery,), and max_rank >= 1."""
    distmat, q_pids, g_pids = np.asarray(distmat), np.asarray(q_pids), np.asarray(g_pids)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D, got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    if q_pids.shape != (num_q,):
        raise ValueError(f"q_pids must have shape ({num_q},), got {q_pids.shape}")
    if g_pids.shape != (num_g,):
        raise ValueError(f"g_pids must have shape ({num_g},), got {g_pids.shape}")
    check_max_rank(max_rank)
    return distmat, q_pids, g_pids


def check_max_rank(max_rank: int) -> None:
    """ValueError unless max_rank >= 1."""
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")


def _evaluate_with_cameras(groups_of: GroupsOf, distmat: np.ndarray, q_pids: np.ndarray,
                          g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray,
                          max_rank: int, cmc_mode: str, order: np.ndarray | None = None
                          ) -> tuple[np.ndarray, float, float]:
    """CMC, mAP and mINP of a protocol whose queries drop gallery items by camera
    (``groups_of``: :func:`sysu_groups` or :func:`llcm_groups`); arguments as
    :func:`evaluate_sysu`."""
    distmat, q_pids, g_pids = _check_ranking(distmat, q_pids, g_pids, max_rank)
    q_camids, g_camids = check_cameras(distmat.shape, q_camids, g_camids)
    groups = groups_of(q_pids, g_pids, q_camids, g_camids)
    return _evaluate(distmat, q_pids, g_pids, groups, max_rank, identity_cmc(cmc_mode), order)


def check_cameras(
    shape: tuple[int, int], q_camids: np.ndarray, g_camids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery cameras as arrays of shapes (num_query,) and (num_gallery,)."""
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = shape
    if q_camids.shape != (num_q,):
        raise ValueError(f"q_camids must have shape ({num_q},), got {q_camids.shape}")
    if g_camids.shape != (num_g,):
        raise ValueError(f"g_camids must have shape ({num_g},), got {g_camids.shape}")
    return q_camids, g_camids


def _evaluate(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    groups: Iterable[tuple[np.ndarray, np.ndarray | None]],
    max_rank: int,
    identity_cmc: bool,
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """CMC, mAP and mINP of checked arrays, the queries ranked group by group.

    Args:
        distmat, q_pids, g_pids: as :func:`_check_ranking` returns them.
        groups: (rows, keep) pairs covering every query once: ``rows`` (n,) query indices whose
            rankings keep the gallery items where ``keep`` (num_gallery,) is True (None: all).
        max_rank: CMC length before the cuts.
        identity_cmc: rank among distinct gallery identities (SYSU, LLCM) instead of images
            (RegDB).
        order: ``np.argsort(distmat, axis=1)``, or None to compute it here.
    """
    num_q, num_g = distmat.shape
    # Rank the full matrix at once: sorting masked rows could break ties differently.
    indices = argsort_rows(distmat) if order is None else order
    g_unique, g_labels = np.unique(g_pids, return_inverse=True)
    # Identities as small integer labels (gathered per ranked item: one byte where they fit);
    # a query identity absent from the gallery gets the unused label g_unique.size.
    labels = np.min_scalar_type(g_unique.size)
    g_labels = g_labels.reshape(-1).astype(labels)
    q_slot = np.searchsorted(g_unique, q_pids).clip(0, max(g_unique.size - 1, 0))
    q_labels = np.where(g_unique[q_slot] == q_pids, q_slot, g_unique.size).astype(labels) \
        if g_unique.size else np.zeros(num_q, dtype=labels)

    ap, inp = np.zeros(num_q), np.zeros(num_q)
    valid = np.zeros(num_q, dtype=bool)
    rank = np.zeros(num_q, dtype=np.int64)  # 0-based rank of the first match (see identity_cmc)
    lengths = set()  # CMC length of each query group
    for rows, keep in groups:
        if rows.size == 0:
            continue
        kept = num_g if keep is None else int(keep.sum())
        # Every row of a group drops the same gallery items, so kept rankings share one length.
        if identity_cmc:
            kept_labels = g_labels if keep is None else g_labels[keep]
            lengths.add(min(max_rank, np.count_nonzero(np.bincount(kept_labels))))
        else:
            lengths.add(min(max_rank, kept))
        for start in range(0, rows.size, _BLOCK):
            block = rows[start : start + _BLOCK]
            order = indices[block]
            if keep is not None:
                order = order[keep[order]].reshape(block.size, kept)
            result = _rank_block(order, q_labels[block], g_labels, identity_cmc)
            valid[block], ap[block], inp[block], rank[block] = result

    if not valid.any():
        raise ValueError("no query has a matching identity in the gallery")
    # Queries that keep different numbers (< max_rank) of gallery identities make the reference
    # code fail; the CMC then runs to the longest (a query has matched within its own length).
    num_valid = float(valid.sum())
    hits = valid[:, None] & (rank[:, None] <= np.arange(max(lengths)))
    cmc = hits.sum(0).astype(np.float32) / num_valid
    return cmc, np.mean(ap[valid]), np.mean(inp[valid])


def _rank_block(
    order: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, identity_rank: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query validity, AP, INP and rank of the first match in kept rankings.

    Args:
        order: (n, k) gallery indices, closest first, after the camera removal.
        q_labels: (n,) query identities as labels of the gallery's (another value when absent).
        g_labels: (num_gallery,) gallery identities as indices into their sorted unique values.
        identity_rank: rank among distinct gallery identities instead of images.

    Returns:
        valid (n,) bool, ap (n,), inp (n,) (zero where not valid), and rank (n,) int: how many
        distinct gallery identities (or, without identity_rank, gallery images) precede the first
        correct match.
    """
    n, k = order.shape
    matches = g_labels[order] == q_labels[:, None]
    valid = matches.any(1)
    ap, inp, id_rank = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    if k == 0:
        return valid, ap, inp, id_rank
    m = matches[valid]
    hits = m.cumsum(1, dtype=np.int32)
    if m.size:
        num_rel = hits[:, -1]
        # Same elementwise operations and row sums as the reference, so AP agrees to the bit.
        ap[valid] = (hits / np.arange(1.0, k + 1.0) * m).sum(1) / num_rel
        last = k - 1 - np.argmax(m[:, ::-1], axis=1)
        inp[valid] = num_rel / (last + 1.0)

    first_match = np.argmax(matches, axis=1)
    if not identity_rank:
        return valid, ap, inp, first_match
    return valid, ap, inp, _identities_before(order, g_labels, first_match)


def _identities_before(order: np.ndarray, g_labels: np.ndarray, position: np.ndarray
                       ) -> np.ndarray:
    """How many distinct identities occur before ``position`` in each ranked row.

    Only each row's first ``position`` items are read (their total, usually far below n * k).

    Args:
        order: (n, k) gallery indices, closest first.
        g_labels: (num_gallery,) identity labels (small non-negative ints).
        position: (n,) 0-based positions, at most k.
    Returns:
        (n,) int counts.
    """
    n = order.shape[0]
    position = np.asarray(position, dtype=np.int64)
    rows = np.repeat(np.arange(n), position)
    places = np.arange(rows.size) - np.repeat(np.cumsum(position) - position, position)
    num_labels = int(g_labels.max(initial=0)) + 1
    # one key per (row, identity) seen in the row's prefix
    keys = np.unique(rows * num_labels + g_labels[order[rows, places]])
    return np.bincount(keys // num_labels, minlength=n)


def first_occurrences(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's positions sorted by label (stable), and which of them is the first occurrence
    of its label: (n, k) labels -> (n, k) int positions, (n, k) bool."""
    n, k = labels.shape
    by_label = np.argsort(labels, axis=1, kind="stable")
    sorted_labels = np.take_along_axis(labels, by_label, 1)
    first = np.ones((n, k), dtype=bool)
    first[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    return by_label, first

"""SYSU-MM01 evaluation protocol: gallery sampling per trial and the SYSU ranking metrics.

Pure numpy and stdlib, so it can be used without torch or fastreid. Both functions reproduce the
public reference code of Ye et al. (``eval_sysu`` and ``process_gallery_sysu`` in
https://github.com/mangye16/Cross-Modal-Re-ID-baseline, also used by AGW and DEEN), including its
ranking ties, its per-identity CMC and its single-shot random draws.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["SYSU_CAMERAS", "SYSU_QUERY_CAMERAS", "evaluate_sysu", "sample_sysu_gallery"]

# Visible (gallery) cameras per search mode; infrared query cameras.
SYSU_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SYSU_QUERY_CAMERAS = (3, 6)

# Cameras 2 (visible) and 3 (infrared) film the same place, so a camera-3 query ignores camera 2.
_SAME_PLACE = {3: 2}
# Query rows ranked per block, to bound memory on large query sets.
_BLOCK = 1024


def evaluate_sysu(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """SYSU-MM01 CMC, mAP and mINP of a query-gallery distance matrix.

    Each query ranks the gallery by ``np.argsort(distmat, axis=1)`` (ties as numpy breaks them);
    a camera-3 query then drops the camera-2 gallery images. The CMC counts each gallery identity
    once: only the first image of every identity in the remaining ranking is kept, and ``cmc[k]``
    is 1 when the query identity is among the first ``k + 1`` of those. AP (mean precision at
    each correct match) and INP (number of matches / 1-based rank of the last match) use the
    remaining ranking without that de-duplication. Queries without a match are skipped.

    Args:
        distmat: (num_query, num_gallery) distances, smaller is closer.
        q_pids: (num_query,) query identities.
        g_pids: (num_gallery,) gallery identities.
        q_camids: (num_query,) query cameras (3 or 6).
        g_camids: (num_gallery,) gallery cameras.
        max_rank: CMC length; like the reference, cut to the number of gallery identities a
            query keeps when that is smaller (so never longer than the gallery).

    Returns:
        cmc: (max_rank,) float32, fraction of valid queries matched within each rank (shorter
            when cut, see ``max_rank``).
        mAP: mean AP over valid queries.
        mINP: mean INP over valid queries.

    Raises:
        ValueError: on mismatched shapes, when no query has a match, or when the two query groups
            (camera 3, others) keep different numbers of gallery identities, fewer than
            ``max_rank`` (the reference code fails there too).
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D, got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    if q_pids.shape != (num_q,) or q_camids.shape != (num_q,):
        raise ValueError(f"q_pids and q_camids must have shape ({num_q},)")
    if g_pids.shape != (num_g,) or g_camids.shape != (num_g,):
        raise ValueError(f"g_pids and g_camids must have shape ({num_g},)")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")

    # Rank the full matrix at once: sorting masked rows could break ties differently.
    indices = np.argsort(distmat, axis=1)
    _, g_labels = np.unique(g_pids, return_inverse=True)
    # Small integer labels let the stable per-row sort below use radix sort.
    g_labels = g_labels.reshape(-1).astype(np.min_scalar_type(max(num_g - 1, 0)))

    ap, inp = np.zeros(num_q), np.zeros(num_q)
    valid = np.zeros(num_q, dtype=bool)
    id_rank = np.zeros(num_q, dtype=np.int64)  # 0-based rank among distinct gallery identities
    lengths = set()  # CMC length of each query group
    groups = [(q_camids == 3, g_camids != _SAME_PLACE[3]), (q_camids != 3, np.ones(num_g, bool))]
    for rows, keep in groups:
        rows = np.flatnonzero(rows)
        if rows.size == 0:
            continue
        # Every row of a group drops the same gallery items, so kept rankings share one length.
        lengths.add(min(max_rank, np.unique(g_labels[keep]).size))
        for start in range(0, rows.size, _BLOCK):
            block = rows[start : start + _BLOCK]
            order = indices[block]
            order = order[keep[order]].reshape(block.size, int(keep.sum()))
            result = _rank_block(order, q_pids[block], g_pids, g_labels)
            valid[block], ap[block], inp[block], id_rank[block] = result

    if not valid.any():
        raise ValueError("no query has a matching identity in the gallery")
    if len(lengths) > 1:
        raise ValueError(f"queries keep different numbers of gallery identities {sorted(lengths)}"
                         f", fewer than max_rank={max_rank}")
    num_valid = float(valid.sum())
    hits = valid[:, None] & (id_rank[:, None] <= np.arange(lengths.pop()))
    cmc = hits.sum(0).astype(np.float32) / num_valid
    return cmc, np.mean(ap[valid]), np.mean(inp[valid])


def _rank_block(
    order: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, g_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query validity, AP, INP and identity rank of kept rankings.

    Args:
        order: (n, k) gallery indices, closest first, after the camera removal.
        q_pids: (n,) query identities.
        g_pids: (num_gallery,) gallery identities.
        g_labels: (num_gallery,) gallery identities as indices into their sorted unique values.

    Returns:
        valid (n,) bool, ap (n,), inp (n,) (zero where not valid), and id_rank (n,) int: how many
        distinct gallery identities precede the first correct match.
    """
    n, k = order.shape
    matches = (g_pids[order] == q_pids[:, None]).astype(np.int32)
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

    # Positions where an identity occurs for the first time in the ranking.
    labels = g_labels[order]
    by_label = np.argsort(labels, axis=1, kind="stable")
    sorted_labels = np.take_along_axis(labels, by_label, 1)
    first = np.ones((n, k), dtype=bool)
    first[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    first_match = np.argmax(matches, axis=1)
    id_rank = (first & (by_label < first_match[:, None])).sum(1)
    return valid, ap, inp, id_rank


def sample_sysu_gallery(
    pool: Sequence[tuple], mode: str = "all", trial: int = 0, shots: int = 1
) -> list[int]:
    """Draw the SYSU-MM01 gallery of one trial from the visible test images.

    Identities in ascending order, then the mode's cameras in order; for each (identity, camera)
    with images, ``shots`` images of its path-sorted list are drawn with ``random.Random(trial)``:
    ``choice`` when ``shots == 1`` (the reference's single-shot draw), ``sample`` otherwise.

    Args:
        pool: items ``(img_path, pid, camid, ...)`` in any order; items of other cameras are
            ignored.
        mode: "all" (cameras 1, 2, 4, 5) or "indoor" (cameras 1, 2).
        trial: seed of the draw.
        shots: images per (identity, camera): 1 single-shot, 10 multi-shot.

    Returns:
        Indices into ``pool`` of the drawn images, in draw order.

    Raises:
        ValueError: on an unknown mode, ``shots < 1``, or an (identity, camera) with fewer than
            ``shots`` images.
        TypeError: when ``trial`` or ``shots`` is not an int.
    """
    if mode not in SYSU_CAMERAS:
        raise ValueError(f"unknown SYSU-MM01 mode {mode!r}; known: {', '.join(SYSU_CAMERAS)}")
    for name, value in (("trial", trial), ("shots", shots)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    cameras = SYSU_CAMERAS[mode]
    folders = defaultdict(list)
    for index, (img_path, pid, camid, *_) in enumerate(pool):
        if int(camid) in cameras:
            folders[int(pid), int(camid)].append((str(img_path), index))

    # A private generator: same draws as the reference's random.seed(trial), global state kept.
    rng = random.Random(trial)
    drawn = []
    for pid in sorted({pid for pid, _ in folders}):
        for cam in cameras:
            files = sorted(folders.get((pid, cam), ()))
            if not files:
                continue
            if shots == 1:
                drawn.append(rng.choice(files)[1])
                continue
            # The reference has no multi-shot draw; forks use an unseeded np.random.choice without
            # replacement, which no trial reproduces. Same seeded generator here, same failure.
            if len(files) < shots:
                raise ValueError(f"identity {pid} camera {cam} has {len(files)} images, "
                                 f"fewer than shots={shots}")
            drawn.extend(index for _, index in rng.sample(files, shots))
    return drawn

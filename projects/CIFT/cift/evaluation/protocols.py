"""VI-ReID evaluation protocols: per-trial gallery draws and the ranking metrics of SYSU-MM01,
RegDB and LLCM.

Pure numpy and stdlib, so it can be used without torch or fastreid. The functions reproduce the
public reference code, including its ranking ties, its per-identity CMC and its single-shot
random draws: ``eval_sysu``, ``eval_regdb`` and ``process_gallery_sysu`` of Ye et al.
(https://github.com/mangye16/Cross-Modal-Re-ID-baseline, also used by AGW and DEEN), and
``eval_llcm`` and ``process_gallery_llcm`` of Zhang and Wang (https://github.com/ZYK100/LLCM).

The ``*_top_r`` variants score the same protocols from each query's nearest gallery items, found
by a caller-supplied search (:data:`Search`), for galleries too large for a distance matrix.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "CMC_MODES",
    "LLCM_CAMERAS",
    "SYSU_CAMERAS",
    "SYSU_QUERY_CAMERAS",
    "Search",
    "evaluate_llcm",
    "evaluate_llcm_top_r",
    "evaluate_regdb",
    "evaluate_regdb_top_r",
    "evaluate_sysu",
    "evaluate_sysu_top_r",
    "sample_llcm_gallery",
    "sample_sysu_gallery",
]

# Visible (gallery) cameras per search mode; infrared query cameras.
SYSU_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SYSU_QUERY_CAMERAS = (3, 6)
# LLCM cameras read per modality: the same nine cameras film in visible light and near infrared
# (camera k is one camera in both), but the reference reads no infrared camera 3.
LLCM_CAMERAS = {"visible": (1, 2, 3, 4, 5, 6, 7, 8, 9), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)}

# Cameras 2 (visible) and 3 (infrared) film the same place, so a camera-3 query ignores camera 2.
_SAME_PLACE = {3: 2}
# Query rows ranked per block, to bound memory on large query sets.
_BLOCK = 1024
# CMC variants of SYSU-MM01 and LLCM: "identity" counts a gallery identity once, at its first
# ranked image (the reference code: AGW, DEEN, LLCM); "image" counts every gallery image (the
# CIFT authors' eval(), RegDB's CMC). R1, AP and INP are the same under both.
CMC_MODES = ("identity", "image")


def _identity_cmc(cmc_mode: str) -> bool:
    """True for the identity-level CMC; ValueError naming the allowed modes otherwise."""
    if cmc_mode not in CMC_MODES:
        raise ValueError(f"cmc_mode must be one of {CMC_MODES}, got {cmc_mode!r}")
    return cmc_mode == "identity"


def evaluate_sysu(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    cmc_mode: str = "identity",
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
    distmat, q_pids, g_pids = _check_ranking(distmat, q_pids, g_pids, max_rank)
    q_camids, g_camids = _check_cameras(distmat.shape, q_camids, g_camids)
    groups = _sysu_groups(q_camids, g_camids)
    return _evaluate(distmat, q_pids, g_pids, groups, max_rank, _identity_cmc(cmc_mode))


def evaluate_regdb(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20
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
    return _evaluate(distmat, q_pids, g_pids, groups, max_rank, identity_cmc=False)


def evaluate_llcm(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    cmc_mode: str = "identity",
) -> tuple[np.ndarray, float, float]:
    """LLCM CMC, mAP and mINP of a query-gallery distance matrix (either direction).

    As :func:`evaluate_sysu` (argsort ties, identity-level CMC that keeps the first image of each
    gallery identity, AP and INP on the plain ranking, queries without a match skipped, the same
    ``max_rank`` cut and failure), except for what a query drops: the gallery images of its own
    identity taken by its own camera. Camera k of the visible and of the infrared images is the
    same camera, so the two modalities' camids compare.

    Args:
        distmat: (num_query, num_gallery) distances, smaller is closer. Which images are the
            queries in each direction of the reference script: see :func:`sample_llcm_gallery`.
        q_pids: (num_query,) query identities.
        g_pids: (num_gallery,) gallery identities.
        q_camids: (num_query,) query cameras.
        g_camids: (num_gallery,) gallery cameras.
        max_rank: CMC length, cut as in :func:`evaluate_sysu`.
        cmc_mode: "identity" (default, the reference) or "image" (every gallery image counts,
            as :func:`evaluate_sysu` with ``cmc_mode="image"``).

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
    distmat, q_pids, g_pids = _check_ranking(distmat, q_pids, g_pids, max_rank)
    q_camids, g_camids = _check_cameras(distmat.shape, q_camids, g_camids)
    groups = _llcm_groups(q_pids, g_pids, q_camids, g_camids)
    return _evaluate(distmat, q_pids, g_pids, groups, max_rank, _identity_cmc(cmc_mode))


# (query rows, kept gallery items or None for all): every query of a group drops the same items.
Group = tuple[np.ndarray, "np.ndarray | None"]


def _sysu_groups(q_camids: np.ndarray, g_camids: np.ndarray) -> list[Group]:
    """Camera-3 queries drop the camera-2 gallery images; the other queries keep every one."""
    return [(np.flatnonzero(q_camids == 3), g_camids != _SAME_PLACE[3]),
            (np.flatnonzero(q_camids != 3), None)]


def _llcm_groups(q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                 g_camids: np.ndarray) -> Iterator[Group]:
    """One group per query (identity, camera): it drops that identity's images of that camera."""
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
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    return distmat, q_pids, g_pids


def _check_cameras(
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
) -> tuple[np.ndarray, float, float]:
    """CMC, mAP and mINP of checked arrays, the queries ranked group by group.

    Args:
        distmat, q_pids, g_pids: as :func:`_check_ranking` returns them.
        groups: (rows, keep) pairs covering every query once: ``rows`` (n,) query indices whose
            rankings keep the gallery items where ``keep`` (num_gallery,) is True (None: all).
        max_rank: CMC length before the cuts.
        identity_cmc: rank among distinct gallery identities (SYSU, LLCM) instead of images
            (RegDB).
    """
    num_q, num_g = distmat.shape
    # Rank the full matrix at once: sorting masked rows could break ties differently.
    indices = np.argsort(distmat, axis=1)
    _, g_labels = np.unique(g_pids, return_inverse=True)
    # Small integer labels let the stable per-row sort below use radix sort.
    g_labels = g_labels.reshape(-1).astype(np.min_scalar_type(max(num_g - 1, 0)))

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
            result = _rank_block(order, q_pids[block], g_pids, g_labels if identity_cmc else None)
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
    order: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, g_labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query validity, AP, INP and rank of the first match in kept rankings.

    Args:
        order: (n, k) gallery indices, closest first, after the camera removal.
        q_pids: (n,) query identities.
        g_pids: (num_gallery,) gallery identities.
        g_labels: (num_gallery,) gallery identities as indices into their sorted unique values,
            for an identity-level rank; None for an image-level rank.

    Returns:
        valid (n,) bool, ap (n,), inp (n,) (zero where not valid), and rank (n,) int: how many
        distinct gallery identities (or, without g_labels, gallery images) precede the first
        correct match.
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

    first_match = np.argmax(matches, axis=1)
    if g_labels is None:
        return valid, ap, inp, first_match
    return valid, ap, inp, _identities_before(g_labels[order], first_match)


def _identities_before(labels: np.ndarray, position: np.ndarray) -> np.ndarray:
    """How many distinct identities occur before ``position`` in each ranked row.

    Args:
        labels: (n, k) identity labels of ranked gallery items (small non-negative ints).
        position: (n,) 0-based positions, at most k.
    Returns:
        (n,) int counts.
    """
    by_label, first = _first_occurrences(labels)
    return (first & (by_label < position[:, None])).sum(1)


def _first_occurrences(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's positions sorted by label (stable), and which of them is the first occurrence
    of its label: (n, k) labels -> (n, k) int positions, (n, k) bool."""
    n, k = labels.shape
    by_label = np.argsort(labels, axis=1, kind="stable")
    sorted_labels = np.take_along_axis(labels, by_label, 1)
    first = np.ones((n, k), dtype=bool)
    first[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    return by_label, first


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
    return _draw(pool, SYSU_CAMERAS[mode], trial, shots)


def sample_llcm_gallery(pool: Sequence[tuple], trial: int = 0, shots: int = 1) -> list[int]:
    """Draw the per-trial image set of one LLCM modality, as the reference's
    ``process_gallery_llcm``.

    Identities in ascending order, then the modality's cameras in order (``LLCM_CAMERAS``:
    visible 1-9, infrared 1, 2, 4-9); for each (identity, camera) with images, ``shots`` images
    of its path-sorted list are drawn with ``random.Random(trial)``: ``choice`` when
    ``shots == 1`` (the reference, which is single-shot only), ``sample`` otherwise (our
    extension, as :func:`sample_sysu_gallery`).

    The reference test script (``test_mode`` in DEEN's and AGW's ``test.py``) draws from one
    modality and keeps every image of the other, over trials 0-9:

    - ``test_mode = [1, 2]``, labelled "IR to VIS" (the default): queries = every infrared test
      image; gallery = this draw from the visible test images. Infrared queries, visible gallery.
    - ``test_mode = [2, 1]``, labelled "VIS to IR": the draw is from the *infrared* test images
      and every visible test image is kept, but the script then transposes the distance matrix
      and swaps the label and camera arguments of ``eval_llcm``: the drawn infrared images are
      the ranked **queries** and every visible test image is the **gallery**. So the published
      "VIS to IR" numbers also rank visible images for infrared queries; what changes per trial
      there is the query set, not the gallery. To reproduce them, pass the infrared draw as the
      queries of :func:`evaluate_llcm` and all visible test images as its gallery.

    Args:
        pool: items ``(img_path, pid, camid, modality, ...)`` of one modality ("visible" or
            "infrared"), in any order; items of cameras the modality does not list are ignored.
        trial: seed of the draw.
        shots: images per (identity, camera); the reference draws 1.

    Returns:
        Indices into ``pool`` of the drawn images, in draw order.

    Raises:
        ValueError: when the pool mixes modalities or has an unknown one, on ``shots < 1``, or
            an (identity, camera) with fewer than ``shots`` images.
        TypeError: when ``trial`` or ``shots`` is not an int.
    """
    modalities = {item[3] if len(item) > 3 else None for item in pool}
    if len(modalities) > 1 or not modalities <= set(LLCM_CAMERAS):
        found = ", ".join(sorted(map(repr, modalities)))
        raise ValueError(f"LLCM pool items need one modality, 'visible' or 'infrared'; "
                         f"found {found}")
    cameras = LLCM_CAMERAS[modalities.pop()] if modalities else ()
    return _draw(pool, cameras, trial, shots)


def _draw(pool: Sequence[tuple], cameras: tuple[int, ...], trial: int, shots: int) -> list[int]:
    """Indices into ``pool`` of ``shots`` images per (identity, camera of ``cameras``), drawn
    identity-major, camera-minor from path-sorted lists with ``random.Random(trial)``."""
    for name, value in (("trial", trial), ("shots", shots)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
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


# search(rows, columns, n): the n (cut to the candidates) gallery items nearest to each query
# of `rows`, closest first, as an (len(rows), n) int array. Candidates are the gallery items
# `columns` (indices into the gallery; the result then indexes `columns`), or every gallery
# item when `columns` is None.
Search = Callable[[np.ndarray, "np.ndarray | None", int], np.ndarray]


def evaluate_sysu_top_r(
    search: Search,
    top_r: int,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    cmc_mode: str = "identity",
) -> tuple[np.ndarray, float]:
    """:func:`evaluate_sysu` from each query's ``top_r`` nearest gallery images instead of a
    distance matrix: for large galleries, where only the top of the ranking is needed.

    The CMC is the same as :func:`evaluate_sysu`'s (ties aside): a query whose top-``top_r``
    list has no match and holds fewer gallery identities than the CMC is long is searched again,
    deeper, until its rank is known. AP is truncated at ``top_r``: the precision at each
    correct match within the first ``top_r`` kept images, divided by the query's number of
    matches in the whole kept gallery. It equals AP when every match is within the first
    ``top_r`` (always when ``top_r`` >= the gallery size), and is smaller otherwise. mINP needs
    the last match's rank and is not computed.

    Args:
        search: nearest gallery items of queries (see :data:`Search`), e.g. a faiss index.
        top_r: ranked gallery images per query, >= 1.
        q_pids, g_pids, q_camids, g_camids, max_rank, cmc_mode: as :func:`evaluate_sysu`.

    Returns:
        cmc: as :func:`evaluate_sysu`.
        mAP_at_r: mean truncated AP over the queries with a match.
    """
    q_pids, g_pids = _check_lists(top_r, q_pids, g_pids, max_rank)
    q_camids, g_camids = _check_cameras((q_pids.size, g_pids.size), q_camids, g_camids)
    groups = _sysu_groups(q_camids, g_camids)
    return _evaluate_top_r(search, top_r, q_pids, g_pids, groups, max_rank,
                           _identity_cmc(cmc_mode))


def evaluate_regdb_top_r(
    search: Search, top_r: int, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int = 20
) -> tuple[np.ndarray, float]:
    """:func:`evaluate_regdb` (image-level CMC, nothing removed) from top-``top_r`` lists; CMC
    and truncated AP as :func:`evaluate_sysu_top_r`."""
    q_pids, g_pids = _check_lists(top_r, q_pids, g_pids, max_rank)
    groups = [(np.arange(q_pids.size), None)]
    return _evaluate_top_r(search, top_r, q_pids, g_pids, groups, max_rank, identity_cmc=False)


def evaluate_llcm_top_r(
    search: Search,
    top_r: int,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
    cmc_mode: str = "identity",
) -> tuple[np.ndarray, float]:
    """:func:`evaluate_llcm` (a query drops its identity's images of its camera) from
    top-``top_r`` lists; CMC (either ``cmc_mode``) and truncated AP as
    :func:`evaluate_sysu_top_r`."""
    q_pids, g_pids = _check_lists(top_r, q_pids, g_pids, max_rank)
    q_camids, g_camids = _check_cameras((q_pids.size, g_pids.size), q_camids, g_camids)
    groups = _llcm_groups(q_pids, g_pids, q_camids, g_camids)
    return _evaluate_top_r(search, top_r, q_pids, g_pids, groups, max_rank,
                           _identity_cmc(cmc_mode))


def _check_lists(top_r: int, q_pids: np.ndarray, g_pids: np.ndarray, max_rank: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """1-D identity arrays, top_r >= 1 and max_rank >= 1, checked."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    if q_pids.ndim != 1 or g_pids.ndim != 1:
        raise ValueError(f"q_pids and g_pids must be 1-D, got shapes {q_pids.shape} and "
                         f"{g_pids.shape}")
    if isinstance(top_r, bool) or not isinstance(top_r, (int, np.integer)) or top_r < 1:
        raise ValueError(f"top_r must be an int >= 1, got {top_r!r}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
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
    """CMC and truncated mAP from ranked lists (arguments as :func:`_evaluate`, plus the search
    and the list length)."""
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

    for plan, order in zip(plans, _first_lists(search, top_r, plans, num_g)):
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
        for i, start, stop in zip(shared, bounds[:-1], bounds[1:]):
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
        by_label, first = _first_occurrences(g_labels[order])
        found = (first & (by_label < found[:, None])).sum(1)
        reached = first.sum(1)
    return np.where(matches.any(1), found, not_found), reached

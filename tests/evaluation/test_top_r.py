"""The protocols from top-R ranked lists (cift.evaluation.top_r): the same CMC as the full
ranking, in both CMC modes, and AP truncated at R."""
import numpy as np
import pytest

from cift.evaluation.galleries import LLCM_CAMERAS
from cift.evaluation.metrics import evaluate_llcm, evaluate_regdb, evaluate_sysu
from cift.evaluation.top_r import evaluate_llcm_top_r, evaluate_regdb_top_r, evaluate_sysu_top_r
from helpers.evaluator import sysu_case


def matrix_search(dist, calls=None):
    """A search over a distance matrix: the n closest candidates of each query row."""
    def search(rows, columns, n):
        d = dist[rows] if columns is None else dist[rows][:, columns]
        if calls is not None:
            calls.append((len(rows), None if columns is None else len(columns), n))
        return np.argsort(d, axis=1, kind="stable")[:, :n]
    return search


def reference_truncated_ap(dist, q_pids, g_pids, dropped, top_r):
    """Per query with a match: sum of precision at each match within the first top_r kept
    images, over its number of matches in the whole kept gallery; one query at a time."""
    aps = []
    for i, order in enumerate(np.argsort(dist, axis=1, kind="stable")):
        ranked = [j for j in order if not dropped(i, j)]
        matches = [g_pids[j] == q_pids[i] for j in ranked]
        if not any(matches):
            continue
        hits, total = 0, 0.0
        for position, match in enumerate(matches[:top_r], start=1):
            if match:
                hits += 1
                total += hits / position
        aps.append(total / sum(matches))
    return float(np.mean(aps))


def sysu_dropped(q_cams, g_cams):
    return lambda i, j: q_cams[i] == 3 and g_cams[j] == 2


@pytest.mark.parametrize("shots", [1, 10])
@pytest.mark.parametrize("top_r", [1, 3, 20, 50, 10_000])
def test_sysu_cmc_equals_the_full_ranking_and_ap_is_truncated(shots, top_r):
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(90, 30, shots, seed=shots + top_r)
    cmc, map_r = evaluate_sysu_top_r(matrix_search(dist), top_r, q_pids, g_pids, q_cams, g_cams)
    full_cmc, full_map, _ = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(cmc, full_cmc)
    want = reference_truncated_ap(dist, q_pids, g_pids, sysu_dropped(q_cams, g_cams), top_r)
    assert map_r == pytest.approx(want, abs=1e-12)
    assert map_r <= full_map + 1e-12
    if top_r >= g_pids.size:
        assert map_r == pytest.approx(full_map, abs=1e-12)


def test_short_lists_are_searched_deeper_only_where_the_cmc_needs_it():
    # Multi-shot, top-3 lists hold at most 3 identities: queries without a match within them
    # are searched again, deeper, until their lists hold 20 identities.
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(40, 30, 10, seed=5)
    calls = []
    cmc, _ = evaluate_sysu_top_r(matrix_search(dist, calls), 3, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(cmc, evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)[0])
    first_pass = [c for c in calls if c[2] == 3]
    assert sum(rows for rows, _, _ in first_pass) == 40
    deeper = [c for c in calls if c[2] > 3]
    assert deeper and all(rows < 40 for rows, _, _ in deeper)
    # Camera-3 queries drop a quarter of the gallery: they search only the kept images.
    assert {columns for _, columns, _ in calls} == {None, g_pids.size * 3 // 4}


@pytest.mark.parametrize("top_r", [1, 5, 25, 400])
def test_regdb_cmc_equals_the_full_ranking(top_r):
    rng = np.random.default_rng(top_r)
    g_pids = np.repeat(np.arange(20), 10)
    q_pids = rng.permutation(g_pids)
    dist = rng.random((200, 200))
    cmc, map_r = evaluate_regdb_top_r(matrix_search(dist), top_r, q_pids, g_pids)
    full_cmc, full_map, _ = evaluate_regdb(dist, q_pids, g_pids)
    np.testing.assert_array_equal(cmc, full_cmc)
    want = reference_truncated_ap(dist, q_pids, g_pids, lambda i, j: False, top_r)
    assert map_r == pytest.approx(want, abs=1e-12)
    if top_r >= 200:
        assert map_r == pytest.approx(full_map, abs=1e-12)


@pytest.mark.parametrize("top_r", [1, 4, 30, 1000])
def test_llcm_cmc_equals_the_full_ranking(top_r):
    # Few images dropped per query (its identity's images of its camera): the whole gallery is
    # searched a little deeper and those images filtered out.
    rng = np.random.default_rng(top_r + 1)
    g_pids = np.repeat(np.arange(25), 6)
    g_cams = rng.choice(LLCM_CAMERAS["visible"], g_pids.size)
    q_pids = rng.integers(0, 25, 120)
    q_cams = rng.choice(LLCM_CAMERAS["infrared"], 120)
    dist = rng.random((120, g_pids.size))
    calls = []
    cmc, map_r = evaluate_llcm_top_r(matrix_search(dist, calls), top_r, q_pids, g_pids, q_cams,
                                     g_cams)
    most_dropped = max(np.sum((g_pids == p) & (g_cams == c))
                       for p, c in zip(q_pids, q_cams, strict=True))
    if top_r >= most_dropped:
        # one search for every (identity, camera) group, not one per group
        assert all(columns is None for _, columns, _ in calls)
        assert calls[0][0] == 120 and all(rows < 120 for rows, _, _ in calls[1:])
    full_cmc, full_map, _ = evaluate_llcm(dist, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(cmc, full_cmc)
    want = reference_truncated_ap(
        dist, q_pids, g_pids,
        lambda i, j: g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i], top_r)
    assert map_r == pytest.approx(want, abs=1e-12)
    if top_r >= g_pids.size:
        assert map_r == pytest.approx(full_map, abs=1e-12)


def test_queries_that_keep_no_gallery_image_are_skipped_as_in_the_full_ranking():
    # SYSU: every gallery image is from camera 2, so the camera-3 query keeps none.
    dist = np.array([[0.1, 0.2], [0.3, 0.4]])
    args = ([0, 0], [0, 1], [3, 6], [2, 2])
    cmc, map_r = evaluate_sysu_top_r(matrix_search(dist), 5, *args)
    full_cmc, full_map, _ = evaluate_sysu(dist, *args)
    np.testing.assert_array_equal(cmc, full_cmc)
    assert map_r == pytest.approx(full_map)
    # LLCM: the first query's only gallery image is its own identity's, from its own camera.
    dist = np.array([[0.5], [0.2]])
    args = ([7, 7], [7], [1, 2], [1])
    cmc, map_r = evaluate_llcm_top_r(matrix_search(dist), 3, *args)
    full_cmc, full_map, _ = evaluate_llcm(dist, *args)
    np.testing.assert_array_equal(cmc, full_cmc)
    assert map_r == pytest.approx(full_map)


@pytest.mark.parametrize("top_r", [0, -1, 2.5, True])
def test_bad_top_r_is_named(top_r):
    with pytest.raises(ValueError, match="top_r"):
        evaluate_regdb_top_r(matrix_search(np.zeros((1, 1))), top_r, [0], [0])


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no query"):
        evaluate_regdb_top_r(matrix_search(np.zeros((2, 2))), 1, [5, 6], [0, 1])


@pytest.mark.parametrize("top_r", [3, 25])
def test_top_r_image_level_cmc_equals_the_full_ranking(top_r):
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(40, 12, 3, seed=5, absent_ids=2)
    full = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="image")[0]
    lists = evaluate_sysu_top_r(matrix_search(dist), top_r, q_pids, g_pids, q_cams, g_cams,
                                cmc_mode="image")[0]
    np.testing.assert_array_equal(lists, full)
    rng = np.random.default_rng(1)
    lp, lc = np.repeat(np.arange(8), 4), np.tile(np.arange(1, 5), 8)
    qp, qc, d = rng.integers(0, 8, 20), rng.integers(1, 5, 20), rng.random((20, 32))
    np.testing.assert_array_equal(
        evaluate_llcm_top_r(matrix_search(d), top_r, qp, lp, qc, lc, cmc_mode="image")[0],
        evaluate_llcm(d, qp, lp, qc, lc, cmc_mode="image")[0])

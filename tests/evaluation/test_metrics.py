"""Metrics of the three protocols (cift.evaluation.metrics): SYSU-MM01, RegDB and LLCM on
hand-worked cases and against one plain-loop reference, and TEST.CMC_MODE, the CIFT authors'
image-level CMC beside the identity-level one (AGW/DEEN)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cift import CiftInputError, load_config
from cift.evaluation import protocols
from cift.evaluation.galleries import SYSU_CAMERAS, SYSU_QUERY_CAMERAS
from cift.evaluation.metrics import evaluate_llcm, evaluate_regdb, evaluate_sysu
from cift.evaluation.tasks import build_tasks
from helpers import DEMO
from helpers.evaluator import sysu_case


def _arrays(*values):
    return [np.asarray(v) for v in values]


def _sysu_dropped(q_cams, g_cams):
    """SYSU-MM01: a camera-3 query ignores the camera-2 gallery images."""
    return lambda i, j: q_cams[i] == 3 and g_cams[j] == 2


# ---------------------------------------------------------------- evaluate_sysu, by hand


def test_camera3_query_ignores_camera2_gallery():
    # Gallery (pid, cam), closest first: (1, cam 2), (2, cam 1), (1, cam 1).
    # A camera-6 query of identity 1 is right at rank 1. A camera-3 query loses the camera-2
    # image: ranking (2, 1) -> rank 2, AP = 1/2, INP = 1/2.
    dist = np.array([[0.1, 0.2, 0.3]])
    g_pids, g_cams = [1, 2, 1], [2, 1, 1]
    cmc6, ap6, inp6 = evaluate_sysu(dist, *_arrays([1], g_pids, [6], g_cams), max_rank=2)
    cmc3, ap3, inp3 = evaluate_sysu(dist, *_arrays([1], g_pids, [3], g_cams), max_rank=2)
    np.testing.assert_array_equal(cmc6, [1.0, 1.0])
    assert ap6 == pytest.approx((1 / 1 + 2 / 3) / 2) and inp6 == pytest.approx(2 / 3)
    np.testing.assert_array_equal(cmc3, [0.0, 1.0])
    assert ap3 == pytest.approx(1 / 2) and inp3 == pytest.approx(1 / 2)


def test_cmc_counts_each_gallery_identity_once():
    # Ranking pids 2, 2, 1, 3 for a query of identity 1: the wrong identity 2 appears twice
    # before the right one, yet the CMC hit is at rank 2 (identities 2, 1, 3), not 3.
    # AP and INP use the plain ranking: the only match is at position 3 -> 1/3 each.
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    cmc, ap, inp = evaluate_sysu(dist, *_arrays([1], [2, 2, 1, 3], [6], [1, 4, 5, 1]), max_rank=3)
    np.testing.assert_array_equal(cmc, [0.0, 1.0, 1.0])
    assert cmc.dtype == np.float32
    assert ap == pytest.approx(1 / 3) and inp == pytest.approx(1 / 3)


def test_minp_uses_the_last_match():
    # Matches at positions 1 and 4 of 5: AP = (1/1 + 2/4) / 2 = 0.75, INP = 2 / 4 = 0.5.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    pids = [7, 8, 9, 7, 9]
    cmc, ap, inp = evaluate_sysu(dist, *_arrays([7], pids, [6], [1, 1, 1, 4, 4]), max_rank=3)
    np.testing.assert_array_equal(cmc, [1.0, 1.0, 1.0])
    assert ap == pytest.approx(0.75) and inp == pytest.approx(0.5)


def test_queries_without_a_valid_match_are_skipped():
    # Query 0 (identity 1, cam 6) matches at rank 1. Query 1 (identity 5) is absent from the
    # gallery; query 2 (identity 3, cam 3) has its only image in camera 2. Both are skipped,
    # so the result is that of query 0 alone, not diluted to 1/3.
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.2, 0.1, 0.3]])
    args = _arrays([1, 5, 3], [1, 2, 3], [6, 6, 3], [1, 4, 2])
    cmc, ap, inp = evaluate_sysu(dist, *args, max_rank=2)
    np.testing.assert_array_equal(cmc, [1.0, 1.0])
    assert ap == 1.0 and inp == 1.0


def test_hand_worked_mixed_case():
    # Gallery (pid, cam): g0 (2,1) g1 (1,2) g2 (2,4) g3 (3,1) g4 (1,5) g5 (3,2).
    # q0 (1, cam 3) ranks g0..g5; without camera 2: pids 2 2 3 1 -> identity rank 3,
    #    AP = 1/4, INP = 1/4.
    # q1 (1, cam 6) ranks g0..g5: pids 2 1 2 3 1 3 -> identity rank 2,
    #    AP = (1/2 + 2/5) / 2 = 0.45, INP = 2/5.
    # q2 (4, cam 6): identity 4 is not in the gallery -> skipped.
    # q3 (3, cam 6) ranks g0 g2 g3 g1 g4 g5: pids 2 2 3 1 1 3 -> identity rank 2,
    #    AP = (1/3 + 2/6) / 2 = 1/3, INP = 2/6.
    # Three valid queries with identity ranks 3, 2, 2: CMC = [0, 2/3, 1].
    row = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    dist = np.array([row, row, row[::-1], [0.1, 0.4, 0.2, 0.3, 0.5, 0.6]])
    args = _arrays([1, 1, 4, 3], [2, 1, 2, 3, 1, 3], [3, 6, 6, 6], [1, 2, 4, 1, 5, 2])
    cmc, ap, inp = evaluate_sysu(dist, *args, max_rank=3)
    np.testing.assert_allclose(cmc, [0.0, 2 / 3, 1.0], rtol=1e-6)
    assert ap == pytest.approx((1 / 4 + 0.45 + 1 / 3) / 3)
    assert inp == pytest.approx((1 / 4 + 2 / 5 + 1 / 3) / 3)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no query"):
        evaluate_sysu(np.zeros((1, 2)), *_arrays([9], [1, 2], [6], [1, 4]))


def test_cmc_is_cut_to_gallery_size_and_identity_count():
    # As in the reference: max_rank is cut to the gallery size, and the identity-wise CMC to
    # the number of gallery identities (3 here) when every query keeps the same number.
    rng = np.random.default_rng(0)
    args = _arrays([1, 2], [1, 1, 2, 2, 3, 3], [6, 6], [1, 4, 1, 4, 1, 4])
    cmc, _, _ = evaluate_sysu(rng.random((2, 6)), *args, max_rank=20)
    assert cmc.shape == (3,)
    args = _arrays([1, 2], [1, 2, 3, 4], [6, 6], [1, 4, 1, 4])
    cmc, _, _ = evaluate_sysu(rng.random((2, 4)), *args, max_rank=20)
    assert cmc.shape == (4,)
    np.testing.assert_array_equal(cmc[-1], 1.0)


# SYSU: camera-3 queries keep 2 identities, camera-6 queries 3. Distances rank id 1 last for
# both queries: query 0 (cam 3, ids 1 and 3 kept) matches at identity rank 2, query 1 at 3.
# LLCM: gallery image 0 (id 1, cam 2), 1 (id 2, cam 3), 2 (id 3, cam 2). Query 0 (id 2, cam 3)
# drops image 1, keeps ids 1 and 3 (2 identities) and has no match: skipped. Query 1 (id 1,
# cam 3) keeps all 3 identities and ranks images 2 (id 3), 1 (id 2), 0 (id 1): rank 3.
UNEQUAL_IDENTITY_COUNTS = {
    "sysu": (evaluate_sysu, ([1, 1], [1, 2, 3], [3, 6], [1, 1, 2]),
             [[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]], [0.0, 0.5, 1.0]),
    "llcm": (evaluate_llcm, ([2, 1], [1, 2, 3], [3, 3], [2, 3, 2]),
             [[0.5, 0.9, 0.1], [0.9, 0.5, 0.1]], [0.0, 0.0, 1.0]),
}


@pytest.mark.parametrize("protocol", sorted(UNEQUAL_IDENTITY_COUNTS))
def test_unequal_identity_counts_below_max_rank_run_to_the_longest(protocol: str):
    # The reference fails on the ragged CMC rows; here the CMC has as many ranks as the query
    # that keeps the most identities (3).
    evaluate, ids_cams, dist, expected = UNEQUAL_IDENTITY_COUNTS[protocol]
    args = _arrays(*ids_cams)
    cmc, _, _ = evaluate(np.array(dist), *args, max_rank=20)
    np.testing.assert_allclose(cmc, expected)
    cmc, _, _ = evaluate(np.zeros((2, 3)), *args, max_rank=2)
    assert cmc.shape == (2,)


@pytest.mark.parametrize("bad", ["distmat", "q_pids", "g_camids", "max_rank"])
def test_bad_inputs_raise(bad):
    kwargs = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"],
                      _arrays(np.zeros((2, 3)), [1, 2], [1, 2, 3], [3, 6], [1, 2, 4]), strict=True))
    kwargs[bad] = {"distmat": np.zeros(3), "q_pids": np.zeros(3), "g_camids": np.zeros(2),
                   "max_rank": 0}[bad]
    with pytest.raises(ValueError):
        evaluate_sysu(**kwargs)


# ---------------------------------------------------------------- evaluate_regdb, by hand


def test_regdb_cmc_is_image_level():
    # Ranking pids 2, 2, 1, 3 for a query of identity 1: the first match is the third image,
    # so cmc = [0, 0, 1, 1] (SYSU's identity-level CMC would hit at rank 2).
    # AP = INP = 1/3 (one match, at position 3).
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    cmc, ap, inp = evaluate_regdb(dist, *_arrays([1], [2, 2, 1, 3]), max_rank=4)
    np.testing.assert_array_equal(cmc, [0.0, 0.0, 1.0, 1.0])
    assert cmc.dtype == np.float32
    assert ap == pytest.approx(1 / 3) and inp == pytest.approx(1 / 3)


def test_regdb_ap_and_inp_with_several_matches():
    # Matches at positions 1 and 4 of 5: AP = (1/1 + 2/4) / 2 = 0.75, INP = 2 / 4 = 0.5.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    cmc, ap, inp = evaluate_regdb(dist, *_arrays([7], [7, 8, 9, 7, 9]), max_rank=3)
    np.testing.assert_array_equal(cmc, [1.0, 1.0, 1.0])
    assert ap == pytest.approx(0.75) and inp == pytest.approx(0.5)


def test_regdb_removes_nothing():
    # A gallery image of the query identity at distance 0 is a match: RegDB queries and gallery
    # never share a camera. The same matrix under LLCM with equal cameras drops it:
    # ranking pids 2, 1 -> identity rank 2, AP = INP = 1/2.
    dist = np.array([[0.0, 0.1, 0.2]])
    cmc, ap, inp = evaluate_regdb(dist, *_arrays([1], [1, 2, 1]), max_rank=3)
    np.testing.assert_array_equal(cmc, [1.0, 1.0, 1.0])
    assert ap == pytest.approx((1 + 2 / 3) / 2) and inp == pytest.approx(2 / 3)
    cmc, ap, inp = evaluate_llcm(dist, *_arrays([1], [1, 2, 1], [4], [4, 4, 5]), max_rank=2)
    np.testing.assert_array_equal(cmc, [0.0, 1.0])
    assert ap == pytest.approx(1 / 2) and inp == pytest.approx(1 / 2)


def test_regdb_hand_worked_both_directions():
    # Visible queries v0 (id 1), v1 (id 2), v2 (id 3); thermal gallery t0 (id 2), t1 (id 1),
    # t2 (id 3), t3 (id 1). Distances (rows v, columns t):
    #   v0: 0.3 0.1 0.9 0.5 -> t1 t0 t3 t2 = 1 2 1 3: matches at 1, 3 -> AP (1 + 2/3)/2 = 5/6,
    #       INP 2/3, first match rank 1
    #   v1: 0.2 0.4 0.1 0.8 -> t2 t0 t1 t3 = 3 2 1 1: match at 2 -> AP 1/2, INP 1/2, rank 2
    #   v2: 0.7 0.6 0.5 0.4 -> t3 t2 t1 t0 = 1 3 1 2: match at 2 -> AP 1/2, INP 1/2, rank 2
    # V->T: cmc = [1/3, 1, 1, 1], mAP = (5/6 + 1/2 + 1/2)/3 = 11/18, mINP = (2/3 + 1/2 + 1/2)/3.
    # T->V ranks the columns' visible images for each thermal row of the transpose:
    #   t0 (id 2): 0.3 0.2 0.7 -> v1 v0 v2: rank 1, AP 1, INP 1
    #   t1 (id 1): 0.1 0.4 0.6 -> v0 v1 v2: rank 1, AP 1, INP 1
    #   t2 (id 3): 0.9 0.1 0.5 -> v1 v2 v0: rank 2, AP 1/2, INP 1/2
    #   t3 (id 1): 0.5 0.8 0.4 -> v2 v0 v1: rank 2, AP 1/2, INP 1/2
    # T->V: cmc = [1/2, 1, 1], mAP = mINP = 3/4 (cmc cut to the 3 gallery images).
    dist = np.array([[0.3, 0.1, 0.9, 0.5], [0.2, 0.4, 0.1, 0.8], [0.7, 0.6, 0.5, 0.4]])
    v_pids, t_pids = np.array([1, 2, 3]), np.array([2, 1, 3, 1])
    cmc, ap, inp = evaluate_regdb(dist, v_pids, t_pids)
    np.testing.assert_allclose(cmc, [1 / 3, 1, 1, 1], rtol=1e-6)
    assert ap == pytest.approx(11 / 18) and inp == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    cmc, ap, inp = evaluate_regdb(dist.T, t_pids, v_pids)
    np.testing.assert_allclose(cmc, [1 / 2, 1, 1], rtol=1e-6)
    assert ap == pytest.approx(3 / 4) and inp == pytest.approx(3 / 4)


def test_regdb_queries_without_a_match_are_skipped():
    # Query 1 (identity 5) has no gallery image: the result is query 0's alone.
    dist = np.array([[0.1, 0.2], [0.2, 0.1]])
    cmc, ap, inp = evaluate_regdb(dist, *_arrays([1, 5], [1, 2]))
    np.testing.assert_array_equal(cmc, [1.0, 1.0])
    assert ap == 1.0 and inp == 1.0
    with pytest.raises(ValueError, match="no query"):
        evaluate_regdb(dist, *_arrays([5, 6], [1, 2]))


def test_regdb_ties_break_as_numpy_argsort():
    # Equal distances: np.argsort keeps the gallery order here, so the match comes second.
    cmc, ap, _ = evaluate_regdb(np.array([[0.5, 0.5]]), *_arrays([1], [2, 1]))
    np.testing.assert_array_equal(cmc, [0.0, 1.0])
    assert ap == pytest.approx(1 / 2)


def test_regdb_cmc_length():
    rng = np.random.default_rng(0)
    cmc, _, _ = evaluate_regdb(rng.random((2, 30)), *_arrays([1, 2], np.arange(30) % 3))
    assert cmc.shape == (20,)
    cmc, _, _ = evaluate_regdb(rng.random((2, 6)), *_arrays([1, 2], np.arange(6) % 3))
    assert cmc.shape == (6,)
    cmc, _, _ = evaluate_regdb(rng.random((2, 6)), *_arrays([1, 2], np.arange(6) % 3), max_rank=2)
    assert cmc.shape == (2,)


@pytest.mark.parametrize("bad", ["distmat", "q_pids", "g_pids", "max_rank"])
def test_regdb_bad_inputs_raise(bad):
    kwargs = dict(zip(["distmat", "q_pids", "g_pids"],
                      _arrays(np.zeros((2, 3)), [1, 2], [1, 2, 3]), strict=True))
    kwargs[bad] = {"distmat": np.zeros(3), "q_pids": np.zeros(3), "g_pids": np.zeros(2),
                   "max_rank": 0}[bad]
    with pytest.raises(ValueError):
        evaluate_regdb(**kwargs)


# ---------------------------------------------------------------- evaluate_llcm, by hand


def test_llcm_removes_same_identity_and_camera_only():
    # Gallery (pid, cam): g0 (1, 2), g1 (2, 2), g2 (1, 5), distances 0.1 0.2 0.3.
    # Query (1, cam 2) drops g0 (its identity, its camera) but keeps g1 (same camera, other
    # identity): ranking pids 2, 1 -> identity rank 2, AP = INP = 1/2.
    # Query (1, cam 6) drops nothing: pids 1 2 1 -> rank 1, AP = (1 + 2/3)/2, INP = 2/3.
    dist = np.array([[0.1, 0.2, 0.3]])
    g = ([1, 2, 1], [2, 2, 5])
    cmc, ap, inp = evaluate_llcm(dist, *_arrays([1], g[0], [2], g[1]), max_rank=2)
    np.testing.assert_array_equal(cmc, [0.0, 1.0])
    assert ap == pytest.approx(1 / 2) and inp == pytest.approx(1 / 2)
    cmc, ap, inp = evaluate_llcm(dist, *_arrays([1], g[0], [6], g[1]), max_rank=2)
    np.testing.assert_array_equal(cmc, [1.0, 1.0])
    assert ap == pytest.approx((1 + 2 / 3) / 2) and inp == pytest.approx(2 / 3)


def test_llcm_cmc_counts_each_gallery_identity_once():
    # Ranking pids 2, 2, 1, 3 (cameras 1, 4, 5, 1) for a query (1, cam 9): the CMC hit is at
    # identity rank 2 (identities 2, 1, 3); AP and INP use the plain ranking: 1/3 each.
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    cmc, ap, inp = evaluate_llcm(dist, *_arrays([1], [2, 2, 1, 3], [9], [1, 4, 5, 1]),
                                 max_rank=3)
    np.testing.assert_array_equal(cmc, [0.0, 1.0, 1.0])
    assert cmc.dtype == np.float32
    assert ap == pytest.approx(1 / 3) and inp == pytest.approx(1 / 3)


def test_llcm_hand_worked_mixed_case():
    # Gallery (pid, cam): g0 (2,1) g1 (1,2) g2 (2,4) g3 (3,1) g4 (1,5) g5 (3,2). Ranks are
    # 1-based positions among the distinct identities of the kept ranking.
    # q0 (1, cam 2) ranks g0..g5 and drops g1: pids 2 2 3 1 3 -> identities 2 3 1, rank 3;
    #    AP = 1/4, INP = 1/4.
    # q1 (1, cam 6) ranks g0..g5, drops nothing: pids 2 1 2 3 1 3 -> identities 2 1 3, rank 2;
    #    AP = (1/2 + 2/5)/2 = 0.45, INP = 2/5.
    # q2 (4, cam 1): identity 4 is not in the gallery -> skipped.
    # q3 (3, cam 1) ranks g0 g2 g3 g1 g4 g5, drops g3: pids 2 2 1 1 3 -> rank 3;
    #    AP = 1/5, INP = 1/5.
    # q4 (2, cam 4) ranks g5..g0, drops g2: pids 3 1 3 1 2 -> rank 3; AP = INP = 1/5.
    # Four valid queries with ranks 3, 2, 3, 3: CMC = [0, 1/4, 1].
    row = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    dist = np.array([row, row, row[::-1], [0.1, 0.4, 0.2, 0.3, 0.5, 0.6], row[::-1]])
    args = _arrays([1, 1, 4, 3, 2], [2, 1, 2, 3, 1, 3], [2, 6, 1, 1, 4], [1, 2, 4, 1, 5, 2])
    cmc, ap, inp = evaluate_llcm(dist, *args, max_rank=3)
    np.testing.assert_allclose(cmc, [0.0, 1 / 4, 1.0], rtol=1e-6)
    assert ap == pytest.approx((1 / 4 + 0.45 + 1 / 5 + 1 / 5) / 4)
    assert inp == pytest.approx((1 / 4 + 2 / 5 + 1 / 5 + 1 / 5) / 4)


def test_llcm_query_whose_matches_share_its_camera_is_skipped():
    # Query 1 (2, cam 3) has its only gallery image in camera 3: no valid match, skipped.
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    args = _arrays([1, 2], [1, 2, 3], [1, 3], [2, 3, 2])
    cmc, ap, inp = evaluate_llcm(dist, *args, max_rank=2)
    np.testing.assert_array_equal(cmc, [1.0, 1.0])
    assert ap == 1.0 and inp == 1.0
    with pytest.raises(ValueError, match="no query"):
        evaluate_llcm(dist[1:], *_arrays([2], [1, 2, 3], [3], [2, 3, 2]))


def test_llcm_equals_sysu_when_no_query_shares_a_gallery_camera():
    # Camera-6 SYSU queries drop nothing, nor do LLCM queries whose camera no gallery image has.
    rng = np.random.default_rng(3)
    dist = rng.random((40, 60))
    q_pids, g_pids = rng.integers(0, 8, 40), np.arange(60) % 8
    g_cams = rng.choice([1, 2, 4, 5], 60)
    want = evaluate_sysu(dist, q_pids, g_pids, np.full(40, 6), g_cams)
    got = evaluate_llcm(dist, q_pids, g_pids, np.full(40, 6), g_cams)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]


@pytest.mark.parametrize("bad", ["distmat", "q_pids", "q_camids", "g_camids", "max_rank"])
def test_llcm_bad_inputs_raise(bad):
    kwargs = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"],
                      _arrays(np.zeros((2, 3)), [1, 2], [1, 2, 3], [3, 6], [1, 2, 4]), strict=True))
    kwargs[bad] = {"distmat": np.zeros(3), "q_pids": np.zeros(3), "q_camids": np.zeros(1),
                   "g_camids": np.zeros(2), "max_rank": 0}[bad]
    with pytest.raises(ValueError):
        evaluate_llcm(**kwargs)


# ---------------------------------------------------------------- plain-loop reference


def _plain_metrics(distmat, q_pids, g_pids, drop, identity_cmc, max_rank):
    """One query at a time: drop(i, j) says whether query i ignores gallery image j."""
    max_rank = min(max_rank, distmat.shape[1])
    rows, aps, inps = [], [], []
    for i, order in enumerate(np.argsort(distmat, axis=1)):
        ranked = [j for j in order if not drop(i, j)]
        if identity_cmc:
            ranked_ids = []
            for j in ranked:
                if g_pids[j] not in ranked_ids:
                    ranked_ids.append(g_pids[j])
        else:
            ranked_ids = [g_pids[j] for j in ranked]
        hits = [n + 1 for n, j in enumerate(ranked) if g_pids[j] == q_pids[i]]
        if not hits:
            continue
        length = min(max_rank, len(ranked_ids))
        rows.append([int(q_pids[i] in ranked_ids[: k + 1]) for k in range(length)])
        aps.append(np.mean([(m + 1) / rank for m, rank in enumerate(hits)]))
        inps.append(len(hits) / hits[-1])
    return np.mean(rows, axis=0), np.mean(aps), np.mean(inps)


def _random_case(seed, num_q, num_g, num_ids, num_cams, ties):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, num_ids, num_q)
    # Every identity in two cameras first, so no query loses its identity to the removal.
    g_pids = np.concatenate([np.repeat(np.arange(num_ids), 2),
                             rng.integers(0, num_ids, num_g)])[:num_g]
    g_cams = np.concatenate([np.tile([1, 2], num_ids),
                             rng.integers(1, num_cams + 1, num_g)])[:num_g]
    q_cams = rng.integers(1, num_cams + 1, num_q)
    dist = rng.integers(0, 4, (num_q, num_g)).astype(float) if ties else rng.random((num_q, num_g))
    return dist, q_pids, g_pids, q_cams, g_cams


CASES = [(1, 2, 1, 2, False), (5, 8, 3, 2, False), (30, 50, 10, 9, True),
         (60, 200, 25, 9, False), (200, 120, 40, 3, True)]


@pytest.mark.parametrize("num_q,num_g,num_ids,ties", [
    (1, 1, 1, False), (5, 8, 3, False), (30, 50, 10, True), (60, 200, 25, False),
    (200, 120, 40, True), (1100, 90, 30, False),
])
def test_sysu_matches_plain_loop_reference(num_q, num_g, num_ids, ties):
    rng = np.random.default_rng(num_q * 1000 + num_g)
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = np.concatenate([np.arange(num_ids), rng.integers(0, num_ids, num_g)])[:num_g]
    q_cams = rng.choice(SYSU_QUERY_CAMERAS, num_q)
    # Every identity in every camera group keeps the CMC rows the same length.
    g_cams = np.where(np.arange(num_g) < num_ids, 1, rng.choice(SYSU_CAMERAS["all"], num_g))
    dist = rng.integers(0, 4, (num_q, num_g)).astype(float) if ties else rng.random((num_q, num_g))
    got = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    want = _plain_metrics(dist, q_pids, g_pids, _sysu_dropped(q_cams, g_cams), True, 20)
    assert got[0].shape == want[0].shape
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12)


@pytest.mark.parametrize("num_q,num_g,num_ids,num_cams,ties", CASES)
def test_regdb_matches_plain_loop_reference(num_q, num_g, num_ids, num_cams, ties):
    dist, q_pids, g_pids, _, _ = _random_case(num_q + num_g, num_q, num_g, num_ids, num_cams,
                                              ties)
    got = evaluate_regdb(dist, q_pids, g_pids, max_rank=20)
    want = _plain_metrics(dist, q_pids, g_pids, lambda i, j: False, False, 20)
    assert got[0].shape == want[0].shape
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12)


@pytest.mark.parametrize("num_q,num_g,num_ids,num_cams,ties", CASES)
def test_llcm_matches_plain_loop_reference(num_q, num_g, num_ids, num_cams, ties):
    dist, q_pids, g_pids, q_cams, g_cams = _random_case(num_q * num_g, num_q, num_g, num_ids,
                                                        num_cams, ties)

    def drop(i, j):
        return g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i]

    got = evaluate_llcm(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    want = _plain_metrics(dist, q_pids, g_pids, drop, True, 20)
    assert got[0].shape == want[0].shape
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12)


def test_llcm_large_query_group_matches_plain_loop_reference():
    # 1,100 queries of one (identity, camera) rank in more than one block.
    rng = np.random.default_rng(11)
    q_pids, q_cams = np.zeros(1100, dtype=int), np.full(1100, 2)
    g_pids, g_cams = np.arange(24) % 6, np.arange(24) % 3 + 1
    dist = rng.random((1100, 24))

    def drop(i, j):
        return g_pids[j] == 0 and g_cams[j] == 2

    got = evaluate_llcm(dist, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    want = _plain_metrics(dist, q_pids, g_pids, drop, True, 5)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12)


def test_module_is_standalone():
    # protocols.py (and the modules it gathers) must load with numpy and stdlib only: no torch,
    # fastreid or cift. A bare package over the folder imports them without cift's __init__.
    code = (
        "import importlib, sys, types\n"
        "pkg = types.ModuleType('p')\n"
        f"pkg.__path__ = [{str(Path(protocols.__file__).parent)!r}]\n"
        "sys.modules['p'] = pkg\n"
        "importlib.import_module('p.protocols')\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'fastreid', 'cift'}\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- TEST.CMC_MODE
# The reference is a plain loop over queries of the authors' eval() formula: rank the gallery,
# drop what the protocol drops, take the cumulative count of correct images clipped at 1, keep
# the first max_rank values, average over queries with a match.


def image_level_cmc(dist, q_pids, g_pids, dropped, max_rank=20):
    """One query at a time: 1 at rank k when a correct gallery image is within the first k."""
    curves = []
    for i in range(dist.shape[0]):
        ranked = [j for j in np.argsort(dist[i]) if not dropped(i, j)]
        correct = [int(g_pids[j] == q_pids[i]) for j in ranked]
        if not any(correct):
            continue
        curve, seen = [], 0
        for c in correct[:max_rank]:
            seen += c
            curve.append(1.0 if seen else 0.0)
        curves.append(curve)
    return np.asarray(curves).mean(0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shots", [1, 3])
def test_sysu_image_level_cmc_is_the_authors_formula(seed, shots):
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(40, 12, shots, seed, absent_ids=2)
    image = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="image")
    identity = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)
    expected = image_level_cmc(dist, q_pids, g_pids,
                               _sysu_dropped(q_cams, g_cams))
    np.testing.assert_allclose(image[0], expected, rtol=0, atol=1e-6)
    # R1, mAP and mINP agree; at later ranks a wrong identity's every image takes a place, so
    # the image-level CMC is never above the identity-level one and here below it
    assert image[0][0] == identity[0][0] and image[1:] == identity[1:]
    n = min(len(image[0]), len(identity[0]))
    assert (image[0][:n] <= identity[0][:n]).all() and (image[0][:n] < identity[0][:n]).any()


def test_llcm_image_level_cmc_keeps_llcm_removal():
    rng = np.random.default_rng(7)
    g_pids, g_cams = np.repeat(np.arange(10), 6), np.tile(np.arange(1, 7), 10)
    q_pids, q_cams = rng.integers(0, 10, 30), rng.integers(1, 7, 30)
    dist = rng.random((30, 60))
    image = evaluate_llcm(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="image")
    expected = image_level_cmc(dist, q_pids, g_pids, lambda i, j: (
        g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i]))
    np.testing.assert_allclose(image[0], expected, rtol=0, atol=1e-6)
    identity = evaluate_llcm(dist, q_pids, g_pids, q_cams, g_cams)
    assert not np.array_equal(image[0][:10], identity[0][:10])


def test_regdb_cmc_is_already_image_level():
    rng = np.random.default_rng(2)
    g_pids, q_pids, dist = np.repeat(np.arange(6), 5), np.repeat(np.arange(6), 5), \
        rng.random((30, 30))
    np.testing.assert_allclose(evaluate_regdb(dist, q_pids, g_pids)[0],
                               image_level_cmc(dist, q_pids, g_pids, lambda i, j: False),
                               rtol=0, atol=1e-6)


def test_unknown_mode_is_refused():
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(40, 12, 1, 0, absent_ids=2)
    with pytest.raises(ValueError, match="cmc_mode"):
        evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="images")


def test_config_key_reaches_the_sysu_tasks():
    items = [(f"q{i}", i % 3, 3, "infrared") for i in range(6)] + [
        (f"g{i}", i % 3, cam, "visible") for i in range(6) for cam in (1, 2)]

    def tasks(mode):
        cfg = load_config(DEMO,
                          ["TEST.CMC_MODE", mode, "TEST.SYSU.TRIALS", "1",
                           "TEST.SYSU.SHOTS", "(1,)"])
        return build_tasks(cfg, "sysu", items, 6)

    assert tasks("image")[0].metric.keywords == {"cmc_mode": "image"}
    assert tasks("identity")[0].top_r_metric.keywords == {"cmc_mode": "identity"}
    with pytest.raises(CiftInputError, match="TEST.CMC_MODE 'pictures'"):
        tasks("pictures")

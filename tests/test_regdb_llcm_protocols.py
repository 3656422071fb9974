"""RegDB and LLCM protocols: hand-worked metric cases, plain-loop references, the LLCM draw and
the direction conventions of the LLCM reference test script."""

import random

import numpy as np
import pytest

from cift.evaluation.protocols import (
    LLCM_CAMERAS,
    evaluate_llcm,
    evaluate_regdb,
    evaluate_sysu,
    sample_llcm_gallery,
)
from test_protocols import reference_draw


def _arrays(*values):
    return [np.asarray(v) for v in values]


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


def test_llcm_unequal_identity_counts_below_max_rank_run_to_the_longest():
    # Gallery: image 0 (id 1, cam 2), image 1 (id 2, cam 3), image 2 (id 3, cam 2). Query 0
    # (id 2, cam 3) drops image 1, keeps ids 1 and 3 (2 identities) and has no match: skipped.
    # Query 1 (id 1, cam 3) keeps all 3 identities. The reference fails on the ragged rows;
    # here the CMC has 3 ranks. Query 1 ranks images 2 (id 3), 1 (id 2), 0 (id 1): rank 3.
    args = _arrays([2, 1], [1, 2, 3], [3, 3], [2, 3, 2])
    dist = np.array([[0.5, 0.9, 0.1], [0.9, 0.5, 0.1]])
    cmc, _, _ = evaluate_llcm(dist, *args, max_rank=20)
    np.testing.assert_allclose(cmc, [0.0, 0.0, 1.0])
    cmc, _, _ = evaluate_llcm(np.zeros((2, 3)), *args, max_rank=2)
    assert cmc.shape == (2,)


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


# ---------------------------------------------------------------- plain-loop references


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


# ---------------------------------------------------------------- sample_llcm_gallery

TEST_DIRS = {"visible": "test_vis", "infrared": "test_nir"}


def _fake_pool(modality, seed=0, pids=(12, 3, 40, 7), cameras=range(1, 10), min_images=10):
    """Items (path, pid, camid, modality) of an LLCM-like test tree; some folders absent."""
    rng = random.Random(seed)
    pool = []
    for pid in pids:
        for cam in cameras:
            if rng.random() < 0.2:
                continue
            for n in rng.sample(range(1, 80), rng.randint(min_images, min_images + 5)):
                path = f"x/{TEST_DIRS[modality]}/cam{cam}/{pid:04d}/{n:04d}.jpg"
                pool.append((path, pid, cam, modality))
    rng.shuffle(pool)
    return pool


@pytest.mark.parametrize("modality", ["visible", "infrared"])
@pytest.mark.parametrize("trial", [0, 1, 9])
def test_llcm_draw_matches_reference(modality, trial):
    # The infrared pool has a camera-3 folder, which the reference never reads.
    pool = _fake_pool(modality, seed=trial)
    drawn = [pool[i][0] for i in sample_llcm_gallery(pool, trial=trial)]
    assert drawn == reference_draw(pool, LLCM_CAMERAS[modality], trial)


def test_llcm_draw_one_per_identity_camera_in_order():
    for modality in ("visible", "infrared"):
        pool = _fake_pool(modality)
        drawn = [pool[i] for i in sample_llcm_gallery(pool, trial=4)]
        pairs = [(pid, cam) for _, pid, cam, _ in drawn]
        present = {(pid, cam) for _, pid, cam, _ in pool if cam in LLCM_CAMERAS[modality]}
        assert sorted(pairs) == pairs and set(pairs) == present and len(pairs) == len(present)
        assert {mod for *_, mod in drawn} == {modality}
    infrared = [item for item in (_fake_pool("infrared")) if item[2] == 3]
    assert infrared and sample_llcm_gallery(infrared) == []


def test_llcm_draw_is_deterministic_and_leaves_global_state():
    pool = _fake_pool("visible")
    random.seed(1234)
    state = random.getstate()
    assert sample_llcm_gallery(pool, trial=3) == sample_llcm_gallery(pool, trial=3)
    assert sample_llcm_gallery(pool, trial=3) != sample_llcm_gallery(pool, trial=4)
    sample_llcm_gallery(pool, trial=1, shots=10)
    assert random.getstate() == state
    shuffled = list(pool)
    random.Random(99).shuffle(shuffled)
    for shots in (1, 10):
        first = [pool[i][0] for i in sample_llcm_gallery(pool, trial=5, shots=shots)]
        second = [shuffled[i][0] for i in sample_llcm_gallery(shuffled, trial=5, shots=shots)]
        assert first == second


def test_llcm_multi_shot_uses_the_same_generator():
    # Not in the reference (single-shot only): `shots` distinct images per (identity, camera)
    # drawn with random.Random(trial).sample, as the SYSU draw does.
    pool = _fake_pool("infrared")
    drawn = [pool[i] for i in sample_llcm_gallery(pool, trial=2, shots=10)]
    rng, want = random.Random(2), []
    for pid in sorted({item[1] for item in pool}):
        for cam in LLCM_CAMERAS["infrared"]:
            files = sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam))
            if files:
                want += rng.sample(files, 10)
    assert [path for path, *_ in drawn] == want


@pytest.mark.parametrize("pool,kwargs,match", [
    (_fake_pool("visible") + _fake_pool("infrared"), {}, "one modality"),
    ([("a.jpg", 1, 1, True)], {}, "one modality"),
    ([("a.jpg", 1, 1)], {}, "one modality"),
    (_fake_pool("visible"), {"shots": 0}, "shots"),
    (_fake_pool("visible"), {"shots": 30}, "fewer than shots=30"),
])
def test_llcm_draw_bad_arguments_raise(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_llcm_gallery(pool, **kwargs)


@pytest.mark.parametrize("kwargs", [{"shots": 2.0}, {"shots": True}, {"trial": "0"}])
def test_llcm_draw_arguments_of_the_wrong_type_raise(kwargs):
    with pytest.raises(TypeError):
        sample_llcm_gallery(_fake_pool("visible"), **kwargs)


# ---------------------------------------------------------------- LLCM directions


def _reference_script(test_mode, visible, infrared, features, trial):
    """The reference test script's steps: `query` is every image of modality test_mode[1],
    `gallery` the draw from modality test_mode[0] (1 = visible, 2 = infrared); [1, 2] ranks
    query x gallery, [2, 1] transposes and swaps the arguments. Returns the rows and columns
    that eval_llcm ranks, and its result."""
    sets = {1: visible, 2: infrared}
    query = sets[test_mode[1]]
    gallery = [sets[test_mode[0]][i] for i in sample_llcm_gallery(sets[test_mode[0]], trial)]
    if test_mode == [1, 2]:
        rows, columns = query, gallery
    else:
        rows, columns = gallery, query
    feat_rows = np.stack([features[item[0]] for item in rows])
    feat_columns = np.stack([features[item[0]] for item in columns])
    result = evaluate_llcm(-(feat_rows @ feat_columns.T),
                           np.array([item[1] for item in rows]),
                           np.array([item[1] for item in columns]),
                           np.array([item[2] for item in rows]),
                           np.array([item[2] for item in columns]))
    return rows, columns, result


def test_llcm_directions_of_the_reference_script():
    visible, infrared = _fake_pool("visible", min_images=2), _fake_pool("infrared", min_images=2)
    rng = np.random.default_rng(0)
    features = {item[0]: rng.standard_normal(8) for item in visible + infrared}

    # [1, 2], "IR to VIS": every infrared image queries the visible draw of the trial.
    rows, columns, ir_to_vis = _reference_script([1, 2], visible, infrared, features, 3)
    assert rows == infrared
    assert columns == [visible[i] for i in sample_llcm_gallery(visible, trial=3)]

    # [2, 1], "VIS to IR": the infrared draw of the trial is ranked against every visible
    # image -- infrared queries again; the trial changes the query set, not the gallery.
    rows, columns, vis_to_ir = _reference_script([2, 1], visible, infrared, features, 3)
    assert rows == [infrared[i] for i in sample_llcm_gallery(infrared, trial=3)]
    assert columns == visible
    assert {item[3] for item in rows} == {"infrared"}
    assert {item[3] for item in columns} == {"visible"}
    assert len(ir_to_vis[0]) == len(vis_to_ir[0]) == 4  # four identities in the gallery


def test_llcm_camera_constants():
    assert {"visible": tuple(range(1, 10)), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)} == LLCM_CAMERAS

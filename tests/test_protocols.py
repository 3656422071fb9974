"""SYSU-MM01 protocol: hand-worked metric cases, a plain-loop reference, and the gallery draw."""

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cift.evaluation import protocols
from cift.evaluation.protocols import (
    SYSU_CAMERAS,
    SYSU_QUERY_CAMERAS,
    evaluate_sysu,
    sample_sysu_gallery,
)


def _arrays(*values):
    return [np.asarray(v) for v in values]


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


def test_unequal_identity_counts_below_max_rank_run_to_the_longest():
    # Camera-3 queries keep 2 identities, camera-6 queries 3: the reference fails on the
    # ragged CMC rows; here the CMC has 3 ranks. Distances rank id 1 last for both queries:
    # query 0 (cam 3, ids 1 and 3 kept) matches at identity rank 2, query 1 at rank 3.
    args = _arrays([1, 1], [1, 2, 3], [3, 6], [1, 1, 2])
    dist = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]])
    cmc, _, _ = evaluate_sysu(dist, *args, max_rank=20)
    np.testing.assert_allclose(cmc, [0.0, 0.5, 1.0])
    cmc, _, _ = evaluate_sysu(np.zeros((2, 3)), *args, max_rank=2)
    assert cmc.shape == (2,)


@pytest.mark.parametrize("bad", ["distmat", "q_pids", "g_camids", "max_rank"])
def test_bad_inputs_raise(bad):
    kwargs = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"],
                      _arrays(np.zeros((2, 3)), [1, 2], [1, 2, 3], [3, 6], [1, 2, 4]), strict=True))
    kwargs[bad] = {"distmat": np.zeros(3), "q_pids": np.zeros(3), "g_camids": np.zeros(2),
                   "max_rank": 0}[bad]
    with pytest.raises(ValueError):
        evaluate_sysu(**kwargs)


# ---------------------------------------------------------------- evaluate_sysu, by reference


def _reference_sysu(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """The documented semantics, one query at a time."""
    max_rank = min(max_rank, distmat.shape[1])
    rows, aps, inps = [], [], []
    for i, order in enumerate(np.argsort(distmat, axis=1)):
        ranked = [j for j in order if not (q_camids[i] == 3 and g_camids[j] == 2)]
        identities = []
        for j in ranked:
            if g_pids[j] not in identities:
                identities.append(g_pids[j])
        # The reference cuts the CMC to the number of gallery identities when there are fewer.
        length = min(max_rank, len(identities))
        rows.append([int(q_pids[i] in identities[: k + 1]) for k in range(length)])
        hits = [n + 1 for n, j in enumerate(ranked) if g_pids[j] == q_pids[i]]
        if not hits:
            rows[-1] = None
            continue
        aps.append(np.mean([(m + 1) / rank for m, rank in enumerate(hits)]))
        inps.append(len(hits) / hits[-1])
    valid = [row for row in rows if row is not None]
    return np.mean(valid, axis=0), np.mean(aps), np.mean(inps)


@pytest.mark.parametrize("num_q,num_g,num_ids,ties", [
    (1, 1, 1, False), (5, 8, 3, False), (30, 50, 10, True), (60, 200, 25, False),
    (200, 120, 40, True), (1100, 90, 30, False),
])
def test_matches_plain_loop_reference(num_q, num_g, num_ids, ties):
    rng = np.random.default_rng(num_q * 1000 + num_g)
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = np.concatenate([np.arange(num_ids), rng.integers(0, num_ids, num_g)])[:num_g]
    q_cams = rng.choice(SYSU_QUERY_CAMERAS, num_q)
    # Every identity in every camera group keeps the CMC rows the same length.
    g_cams = np.where(np.arange(num_g) < num_ids, 1, rng.choice(SYSU_CAMERAS["all"], num_g))
    dist = rng.integers(0, 4, (num_q, num_g)).astype(float) if ties else rng.random((num_q, num_g))
    got = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    want = _reference_sysu(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    assert got[0].shape == want[0].shape
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


# ---------------------------------------------------------------- sample_sysu_gallery


def _fake_pool(seed=0, pids=(12, 3, 40, 7), min_images=10):
    """Items (path, pid, camid, modality) of a SYSU-like tree; some (pid, cam) folders absent."""
    rng = random.Random(seed)
    pool = []
    for pid in pids:
        for cam in range(1, 7):
            if rng.random() < 0.2:
                continue
            for n in rng.sample(range(1, 80), rng.randint(min_images, min_images + 8)):
                pool.append((f"x/cam{cam}/{pid:04d}/{n:04d}.jpg", pid, cam, cam not in (3, 6)))
    rng.shuffle(pool)
    return pool


def reference_draw(pool, cameras, trial):
    """The reference draw: global random.seed(trial), identity-major, camera-minor."""
    state = random.getstate()
    random.seed(trial)
    drawn = []
    for pid in sorted({item[1] for item in pool}):
        for cam in cameras:
            files = sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam))
            if files:
                drawn.append(random.choice(files))
    random.setstate(state)
    return drawn


@pytest.mark.parametrize("mode", ["all", "indoor"])
@pytest.mark.parametrize("trial", [0, 1, 7])
def test_single_shot_matchesreference_draw(mode, trial):
    pool = _fake_pool()
    drawn = [pool[i][0] for i in sample_sysu_gallery(pool, mode=mode, trial=trial)]
    assert drawn == reference_draw(pool, SYSU_CAMERAS[mode], trial)


def test_draw_is_deterministic_per_trial_and_differs_between_trials():
    pool = _fake_pool()
    assert sample_sysu_gallery(pool, trial=3) == sample_sysu_gallery(pool, trial=3)
    assert sample_sysu_gallery(pool, trial=3) != sample_sysu_gallery(pool, trial=4)


@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_draw_uses_the_mode_cameras_once_per_identity_camera(mode):
    pool = _fake_pool()
    drawn = [pool[i] for i in sample_sysu_gallery(pool, mode=mode)]
    pairs = [(pid, cam) for _, pid, cam, _ in drawn]
    present = {(pid, cam) for _, pid, cam, _ in pool if cam in SYSU_CAMERAS[mode]}
    assert sorted(pairs) == pairs and set(pairs) == present and len(pairs) == len(present)
    assert {cam for _, cam in pairs} <= set(SYSU_CAMERAS[mode])


def test_multi_shot_draws_ten_distinct_images_per_identity_camera():
    pool = _fake_pool()
    drawn = [pool[i] for i in sample_sysu_gallery(pool, trial=2, shots=10)]
    per_pair = {}
    for path, pid, cam, _ in drawn:
        assert path.split("/")[-3:-1] == [f"cam{cam}", f"{pid:04d}"]
        per_pair.setdefault((pid, cam), []).append(path)
    assert all(len(paths) == len(set(paths)) == 10 for paths in per_pair.values())
    rng = random.Random(2)
    want = []
    for pid, cam in sorted(per_pair):
        want += rng.sample(sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam)), 10)
    assert [path for path, *_ in drawn] == want


def test_pool_order_does_not_change_the_draw():
    pool = _fake_pool()
    shuffled = list(pool)
    random.Random(99).shuffle(shuffled)
    for shots in (1, 10):
        first = [pool[i][0] for i in sample_sysu_gallery(pool, trial=5, shots=shots)]
        second = [shuffled[i][0] for i in sample_sysu_gallery(shuffled, trial=5, shots=shots)]
        assert first == second


def test_global_random_state_is_untouched():
    random.seed(1234)
    state = random.getstate()
    sample_sysu_gallery(_fake_pool(), trial=0)
    sample_sysu_gallery(_fake_pool(), trial=1, shots=10)
    assert random.getstate() == state


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "outdoor"}, "unknown SYSU-MM01 mode"),
    ({"shots": 0}, "shots"),
    ({"shots": -1}, "shots"),
    ({"shots": 30}, "fewer than shots=30"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_sysu_gallery(_fake_pool(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"shots": 2.0}, {"shots": True}, {"trial": "0"}])
def test_arguments_of_the_wrong_type_raise(kwargs):
    with pytest.raises(TypeError):
        sample_sysu_gallery(_fake_pool(), **kwargs)


def test_constants():
    assert SYSU_CAMERAS == {"all": (1, 2, 4, 5), "indoor": (1, 2)}
    assert SYSU_QUERY_CAMERAS == (3, 6)

"""TEST.CMC_MODE: the CIFT authors' image-level CMC beside the identity-level one (AGW/DEEN).

The reference below is a plain loop over queries of the authors' eval() formula: rank the
gallery, drop what the protocol drops, take the cumulative count of correct images clipped at
1, keep the first max_rank values, average over queries with a match.
"""
from pathlib import Path

import numpy as np
import pytest

from cift import CiftInputError, load_config
from cift.evaluation.protocols import (
    SYSU_CAMERAS,
    SYSU_QUERY_CAMERAS,
    evaluate_llcm,
    evaluate_llcm_top_r,
    evaluate_regdb,
    evaluate_sysu,
    evaluate_sysu_top_r,
)
from cift.evaluation.tasks import build_tasks

ROOT = Path(__file__).resolve().parents[1]


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


def sysu_case(seed, shots):
    rng = np.random.default_rng(seed)
    num_ids = 12
    g_pids = np.repeat(np.arange(num_ids), 4 * shots)
    g_cams = np.tile(np.repeat(SYSU_CAMERAS["all"], shots), num_ids)
    q_pids = rng.integers(0, num_ids + 2, 40)  # a few query identities absent: skipped
    q_cams = rng.choice(SYSU_QUERY_CAMERAS, 40)
    return rng.random((40, g_pids.size)), q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shots", [1, 3])
def test_sysu_image_level_cmc_is_the_authors_formula(seed, shots):
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(seed, shots)
    image = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="image")
    identity = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)
    expected = image_level_cmc(dist, q_pids, g_pids,
                               lambda i, j: q_cams[i] == 3 and g_cams[j] == 2)
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


def matrix_search(dist):
    def search(rows, columns, n):
        d = dist[rows] if columns is None else dist[rows][:, columns]
        return np.argsort(d, axis=1, kind="stable")[:, :n]
    return search


@pytest.mark.parametrize("top_r", [3, 25])
def test_top_r_image_level_cmc_equals_the_full_ranking(top_r):
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(5, 3)
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


def test_regdb_cmc_is_already_image_level():
    rng = np.random.default_rng(2)
    g_pids, q_pids, dist = np.repeat(np.arange(6), 5), np.repeat(np.arange(6), 5), \
        rng.random((30, 30))
    np.testing.assert_allclose(evaluate_regdb(dist, q_pids, g_pids)[0],
                               image_level_cmc(dist, q_pids, g_pids, lambda i, j: False),
                               rtol=0, atol=1e-6)


def test_unknown_mode_is_refused():
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(0, 1)
    with pytest.raises(ValueError, match="cmc_mode"):
        evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, cmc_mode="images")


def test_config_key_reaches_the_sysu_tasks():
    items = [(f"q{i}", i % 3, 3, "infrared") for i in range(6)] + [
        (f"g{i}", i % 3, cam, "visible") for i in range(6) for cam in (1, 2)]

    def tasks(mode):
        cfg = load_config(str(ROOT / "configs/Demo/baseline_synthetic.yml"),
                          ["TEST.CMC_MODE", mode, "TEST.SYSU.TRIALS", "1",
                           "TEST.SYSU.SHOTS", "(1,)"])
        return build_tasks(cfg, "sysu", items, 6)

    assert tasks("image")[0].metric.keywords == {"cmc_mode": "image"}
    assert tasks("identity")[0].top_r_metric.keywords == {"cmc_mode": "identity"}
    with pytest.raises(CiftInputError, match="TEST.CMC_MODE 'pictures'"):
        tasks("pictures")

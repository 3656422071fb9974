"""k-reciprocal re-ranking on the CPU against a direct small-matrix computation."""

import numpy as np
import pytest

from cift import load_config
from cift.evaluation import VIEvaluator, build_tasks
from cift.evaluation.rerank import k_reciprocal_distance
from helpers import DEMO
from helpers.evaluator import feed, identity_features, items


def reference_jaccard(x: np.ndarray, num_q: int, k1: int, k2: int) -> np.ndarray:
    """The k-reciprocal Jaccard distance written out plainly (fastreid's variant of Zhong et
    al.: neighbours by squared Euclidean distance, weights softmax(-d) over each expanded
    k-reciprocal set, query expansion over the k2 nearest, Jaccard by minima)."""
    n = len(x)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    rank = np.argsort(d, axis=1, kind="stable")[:, :k1]

    def reciprocal(i, k):
        forward = rank[i, :k + 1] if k + 1 <= k1 else rank[i]
        return np.array([j for j in forward if i in (rank[j, :k + 1] if k + 1 <= k1
                                                       else rank[j])])

    v = np.zeros((n, n))
    for i in range(n):
        base = reciprocal(i, k1)
        expansion = list(base)
        for c in base:
            cand = reciprocal(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(cand, base)) > 2 / 3 * len(cand):
                expansion += list(cand)
        expansion = np.unique(expansion)
        w = np.exp(-d[i, expansion])
        v[i, expansion] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            m = np.minimum(v[i], v[j]).sum()
            jac[i, j] = 1 - m / (2 - m)
    return np.maximum(jac, 0)[:num_q, num_q:]


@pytest.mark.parametrize("k1, k2", [(5, 3), (4, 1), (6, 2)])
def test_cpu_rerank_matches_the_direct_computation(k1, k2):
    rng = np.random.default_rng(k1 * 10 + k2)
    q, g = rng.standard_normal((7, 6)), rng.standard_normal((15, 6))
    original = rng.random((7, 15))
    got = k_reciprocal_distance(q, g, original, k1=k1, k2=k2, lambda_value=0.3)
    unit = np.concatenate([q, g]) / np.linalg.norm(np.concatenate([q, g]), axis=1, keepdims=True)
    want = reference_jaccard(unit, 7, k1, k2) * 0.7 + original * 0.3
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_lambda_one_keeps_the_original_distances():
    rng = np.random.default_rng(0)
    q, g, original = rng.standard_normal((4, 3)), rng.standard_normal((9, 3)), rng.random((4, 9))
    np.testing.assert_allclose(k_reciprocal_distance(q, g, original, 3, 2, 1.0), original,
                               atol=1e-6)


def test_evaluator_applies_rerank_when_enabled():
    cfg_plain = load_config(DEMO,
                            ["TEST.SYSU.TRIALS", "1"])
    cfg_rerank = load_config(DEMO,
                             ["TEST.SYSU.TRIALS", "1", "TEST.RERANK.ENABLED", "True",
                              "TEST.RERANK.K1", "6", "TEST.RERANK.K2", "3"])
    query, pool = items()
    test_items = query + pool
    feats = identity_features(test_items, noise=1.5, seed=4)
    results = []
    for cfg in (cfg_plain, cfg_rerank):
        ev = VIEvaluator(cfg, test_items, build_tasks(cfg, "sysu", test_items, len(query)))
        feed(ev, test_items, feats, np.arange(len(test_items)))
        results.append(ev.evaluate())
    assert results[0]["all-single"] != results[1]["all-single"]

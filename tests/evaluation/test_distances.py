"""The protocols' distances (cift.evaluation.distances): −q·gᵀ of the features as given, and
the per-trial rankings drawn from one product, which must equal each trial's own product's
ranking (the public scripts compute one product per trial), ties included."""
from __future__ import annotations

import numpy as np
import pytest

from cift.evaluation.distances import (
    PairwiseRankings,
    negative_inner_product,
    order_is_certain,
    product_error_bound,
    trial_rankings,
)
from cift.evaluation.metrics import evaluate_sysu
from helpers.evaluator import sysu_case


def _trials(rng, num_q, num_g, count):
    """Trials over rows [0, num_q) (queries) and [num_q, num_q + num_g) (gallery): each a random
    gallery subset in random (draw) order."""
    pool = np.arange(num_q, num_q + num_g)
    return [(np.arange(num_q), rng.permutation(pool)[:rng.integers(2, num_g)])
            for _ in range(count)]


def _features(rng, n, d, kind):
    if kind == "random":  # float32 unit rows, as a model gives them
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if kind == "duplicates":  # repeated gallery rows: exact and rounding-made ties
        x = _features(rng, n, d, "random")
        x[n // 2:] = x[n // 2 - 3:n // 2][rng.integers(0, 3, n - n // 2)]
        return x
    # coarse values: every product is exact, so ties are exact in any summation order
    return rng.integers(-2, 3, (n, d)).astype(np.float32) / 4


@pytest.mark.parametrize("kind", ["random", "duplicates", "coarse"])
@pytest.mark.parametrize("d", [16, 2048])
def test_each_trial_ranks_as_its_own_product(kind, d):
    rng = np.random.default_rng(d + len(kind))
    x = _features(rng, 300, d, kind)
    x64 = x.astype(np.float64)
    trials = _trials(rng, 120, 180, 6)
    for (q, g), (dist, order) in zip(trials, trial_rankings(x64, trials), strict=True):
        # the public scripts: a float64 array per trial, −np.matmul(query, gallery.T), argsort
        own = -np.matmul(x64[q], np.transpose(x64[g]))
        np.testing.assert_array_equal(np.argsort(dist, axis=1) if order is None else order,
                                      np.argsort(own, axis=1))
        if order is None:  # the trial's own product: the same bits
            np.testing.assert_array_equal(dist, own)
        got = evaluate_sysu(dist, *_labels(q, g), order=order)
        want = evaluate_sysu(own, *_labels(q, g))
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:] == want[1:]


def _labels(q, g):
    rng = np.random.default_rng(q.size + g.size)
    pids = rng.integers(0, 8, 400)
    cams = np.where(np.arange(400) < 120, rng.choice([3, 6], 400), rng.choice([1, 2, 4, 5], 400))
    return pids[q], pids[g], cams[q], cams[g]


def test_slices_are_used_unless_rounding_could_reorder_a_row():
    rng = np.random.default_rng(0)
    trials = _trials(rng, 50, 80, 4)
    x = _features(rng, 130, 64, "random").astype(np.float64)
    shared = PairwiseRankings(x, trials)
    assert all(shared.ranking(q, g)[1] is not None for q, g in trials)  # no near-tie: sliced
    x[100] = x[90]  # two equal gallery rows: a tie in every row of a trial holding both
    shared = PairwiseRankings(x, trials)
    for q, g in trials:
        both = {90, 100} <= set(g.tolist())
        assert (shared.ranking(q, g)[1] is None) == both


def test_large_trials_read_their_order_off_the_sorted_product():
    rng = np.random.default_rng(1)
    x = _features(rng, 130, 64, "random").astype(np.float64)
    big = (np.arange(50), rng.permutation(np.arange(50, 130))[:60])
    small = (np.arange(50), rng.permutation(np.arange(50, 130))[:10])
    shared = PairwiseRankings(x, [big, small])
    calls = []
    sorted_rows = shared.sorted_rows
    shared.sorted_rows = lambda: calls.append(1) or sorted_rows()
    for q, g in (big, small):
        dist, order = shared.ranking(q, g)
        np.testing.assert_array_equal(order, np.argsort(-(x[q] @ x[g].T), axis=1))
    assert calls == [1]  # the big trial only; the small one sorts its slice


def test_order_is_certain_by_hand():
    dist = np.array([[0.3, 0.1, 0.2]])
    order = np.argsort(dist, axis=1)
    norms = np.ones(1), np.ones(3)
    assert order_is_certain(dist, order, *norms, dim=4)
    tied = np.array([[0.3, 0.1, 0.1]])
    assert not order_is_certain(tied, np.argsort(tied, axis=1), *norms, dim=4)
    bound = product_error_bound(np.ones(1), 1.0, 4)[0]
    near = np.array([[0.3, 0.1, 0.1 + 3 * bound]])  # apart, but within twice the bound
    assert not order_is_certain(near, np.argsort(near, axis=1), *norms, dim=4)
    single = np.array([[0.5]])
    assert order_is_certain(single, np.zeros((1, 1), dtype=int), np.ones(1), np.ones(1), dim=4)


@pytest.mark.parametrize("seed", range(3))
def test_error_bound_covers_other_summation_orders(seed):
    # Products of float32 values are exact in float64; sums in other orders (reversed, pairwise,
    # BLAS) stay within the bound of the exact value's.
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((5, 2048)).astype(np.float32).astype(np.float64)
    g = rng.standard_normal((7, 2048)).astype(np.float32).astype(np.float64)
    blas = q @ g.T
    forward = np.array([[sum((qi * gj).tolist()) for gj in g] for qi in q])
    backward = np.array([[sum((qi * gj)[::-1].tolist()) for gj in g] for qi in q])
    bound = product_error_bound(np.linalg.norm(q, axis=1), np.linalg.norm(g, axis=1).max(), 2048)
    for other in (forward, backward):
        assert (np.abs(blas - other).max(axis=1) <= bound).all()


def test_negative_inner_product_keeps_the_arrays_precision():
    q, g = np.ones((2, 3), np.float32), np.full((4, 3), 2.0, np.float32)
    assert negative_inner_product(q, g).dtype == np.float32
    np.testing.assert_array_equal(negative_inner_product(q.astype(np.float64), g), -6.0)


def test_metrics_accept_the_callers_order():
    dist, q_pids, g_pids, q_cams, g_cams = sysu_case(30, 8, 2, 0)
    order = np.argsort(dist, axis=1)
    got = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams, order=order)
    want = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]

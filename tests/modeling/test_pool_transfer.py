"""A protocol's trials transferred from one neighbour search of their pool: each trial's lists
and transferred features are those of its own sparse-form transfer."""
import numpy as np
import pytest
import torch

from cift.evaluation.vi_evaluator import transferred_trials
from cift.modeling.graph import GraphSettings
from cift.modeling.pool_transfer import PoolTransfer
from cift.modeling.transfer import PoolNeighbours, test_time_transfer
from cift.neighbours import nearest_neighbours, self_nearest_neighbours
from cift.search_settings import TransferSettings
from helpers.evaluator import evaluate, noisy

SETTINGS = GraphSettings(tau_hom=0.3, tau_het=0.15, k=3)


def draws(seed=0, num_query=40, pool=(40, 90), trials=5, gallery=25):
    """Features (N, 16) and trials: the same queries (rows :num_query) against `gallery` items
    drawn without replacement from the pool (rows pool[0]:pool[1]), in draw order; the last
    trial's queries are a subset in shuffled order."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((pool[1], 16)).astype(np.float32)
    query = np.arange(num_query)
    out = [(query, rng.choice(np.arange(*pool), gallery, replace=False)) for _ in range(trials)]
    out[-1] = (rng.permutation(query)[:num_query // 2], out[-1][1])
    return x, out


def per_trial(gallery, queries, branch):
    """One trial's transfer as the tool does it without a pool: the sparse form."""
    g, q = test_time_transfer(torch.from_numpy(gallery), torch.from_numpy(queries), SETTINGS,
                              "sparse")
    return g.numpy(), q.numpy()


def key_map(use_keys, seed):
    """A random linear key projection (16 -> 8), or None for the normalised features."""
    torch.manual_seed(seed)
    return torch.nn.Linear(16, 8, bias=False) if use_keys else None


def pooled(keys=None, **how):
    return PoolTransfer(per_trial, SETTINGS, TransferSettings(**how), lambda branch: keys)


def test_each_trials_lists_are_its_own_search():
    x, trials = draws()
    keys = torch.from_numpy(x)
    union = (torch.unique(torch.from_numpy(np.concatenate([q for q, _ in trials]))),
             torch.unique(torch.from_numpy(np.concatenate([g for _, g in trials]))))
    shared = PoolNeighbours(keys, *union)
    for q, g in trials:
        (g_sims, g_idx), (q_sims, q_idx) = shared.lists(torch.from_numpy(q), torch.from_numpy(g),
                                                        SETTINGS.k + 1)
        want_g = self_nearest_neighbours(keys[g], SETTINGS.k + 1)
        want_q = nearest_neighbours(keys[q], keys[g], SETTINGS.k + 1)
        for (sims, idx), (want_sims, want_idx) in (((g_sims, g_idx), want_g),
                                                   ((q_sims, q_idx), want_q)):
            torch.testing.assert_close(idx, want_idx, rtol=0, atol=0)
            torch.testing.assert_close(sims, want_sims, rtol=0, atol=1e-6)
        assert (g_idx == torch.arange(len(g))[:, None]).any(dim=1).all()  # self among them


@pytest.mark.parametrize("use_keys", [False, True])
def test_pooled_trials_equal_each_trials_sparse_transfer(use_keys):
    x, trials = draws(seed=1)
    keys = key_map(use_keys, seed=0)

    def own(gallery, queries, branch):
        g, q = test_time_transfer(
            torch.from_numpy(gallery), torch.from_numpy(queries), SETTINGS, "sparse",
            **({} if keys is None else {"gallery_keys": keys(torch.from_numpy(gallery)),
                                        "query_keys": keys(torch.from_numpy(queries))}))
        return g.numpy(), q.numpy()

    transfer = PoolTransfer(own, SETTINGS, TransferSettings(), lambda branch: keys)
    assert transfer.shares(trials)
    with torch.no_grad():
        got = list(transferred_trials(transfer, x, trials, "i2r"))
        want = [own(x[g], x[q], "i2r") for q, g in trials]
    assert len(got) == len(trials)
    for (q, g), pair, want_pair in zip(trials, got, want, strict=True):
        assert pair[0].shape == (len(g), 16) and pair[1].shape == (len(q), 16)
        for a, b in zip(pair, want_pair, strict=True):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case, how, graph", [
    ("one trial", {}, "h2ft"),
    ("dense form", {"mode": "dense"}, "h2ft"),
    ("small graphs dense", {"mode": "auto", "sparse_above": 1000}, "h2ft"),
    ("faiss search", {"backend": "faiss"}, "h2ft"),
    ("GFT", {}, "gft"),
])
def test_other_cases_transfer_trial_by_trial(case, how, graph):
    x, trials = draws(seed=2)
    if case == "one trial":
        trials = trials[:1]
    calls = []

    def spy(gallery, queries, branch):
        calls.append((gallery.shape[0], queries.shape[0], branch))
        return gallery, queries

    transfer = PoolTransfer(spy, GraphSettings(graph=graph), TransferSettings(**how),
                            lambda branch: None)
    assert not transfer.shares(trials)
    list(transferred_trials(transfer, x, trials, "r2i"))
    assert calls == [(len(g), len(q), "r2i") for q, g in trials]


def test_products_beyond_the_bound_transfer_trial_by_trial(monkeypatch):
    from cift.modeling import pool_transfer

    x, trials = draws(seed=3)
    queries, pool = 40, len(np.unique(np.concatenate([g for _, g in trials])))
    monkeypatch.setattr(pool_transfer, "MAX_POOL_ENTRIES", queries * pool + pool * pool - 1)
    assert not pooled().shares(trials)
    monkeypatch.setattr(pool_transfer, "MAX_POOL_ENTRIES", queries * pool + pool * pool)
    assert pooled().shares(trials)


def test_the_evaluator_transfers_each_branchs_trials_together():
    # every task of a branch in one call, and the tables of the trial-by-trial transfer
    calls = []

    class Recording:
        def __call__(self, gallery, queries, branch):
            return per_trial(gallery, queries, branch)

        def over_trials(self, x, trials, branch):
            calls.append(("features", branch, len(trials)))
            return pooled(mode="sparse").over_trials(x, trials, branch)

        def distances_over_trials(self, x, trials, branch):
            calls.append(("distances", branch, len(trials)))
            return pooled(mode="sparse").distances_over_trials(x, trials, branch)

    def two_branches(test_items):
        f = noisy(test_items)
        return np.stack([f, f[:, ::-1].copy()], axis=1)

    got = evaluate(two_branches, transfer=Recording())
    assert calls == [("distances", "i2r", 4 * 3)]  # 4 settings x 3 trials, infrared queries
    want = evaluate(two_branches, transfer=per_trial)
    assert got == want
    assert got["CIFT"] != got["CIFT\u2020"]


@pytest.mark.parametrize("use_keys", [False, True])
def test_pooled_distances_are_those_of_each_trials_transferred_features(use_keys):
    x, trials = draws(seed=4)
    keys = key_map(use_keys, seed=1)
    transfer = PoolTransfer(per_trial, SETTINGS, TransferSettings(), lambda branch: keys)
    assert transfer.shares(trials)
    with torch.no_grad():
        got = list(transfer.distances_over_trials(x, trials, "r2i"))
        pairs = list(transfer.over_trials(x, trials, "r2i"))
    assert len(got) == len(trials)
    for (q, g), dist, (g_out, q_out) in zip(trials, got, pairs, strict=True):
        assert dist.dtype == np.float32 and dist.shape == (len(q), len(g))
        np.testing.assert_allclose(dist, -(q_out @ g_out.T), rtol=0, atol=2e-6)


def test_trials_without_a_shared_search_get_the_product_of_their_features():
    x, trials = draws(seed=5)
    transfer = pooled(mode="dense")
    assert not transfer.shares(trials)
    for (q, g), dist in zip(trials, transfer.distances_over_trials(x, trials, "i2r"),
                            strict=True):
        g_out, q_out = per_trial(x[g], x[q], "i2r")
        assert np.array_equal(dist, -(q_out @ g_out.T))

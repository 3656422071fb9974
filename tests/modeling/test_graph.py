"""H2FT / GFT affinity against a plain per-row loop reference; masks, top-k, ties."""

import math

import pytest
import torch

from cift.branches import BRANCHES as TRAINING_MODES
from cift.modeling.graph import GraphSettings, affinity, neighbour_mask, training_query_mask

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
TOLERANCES = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
}
TAU_HOM, TAU_HET, TAU_GFT = 0.4, 0.2, 0.4


# ---------------------------------------------------------------------------------------------
# Reference: one row at a time, one entry at a time, in float64.
# ---------------------------------------------------------------------------------------------


def _cos(a, b):
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def _reference_row(x, i, allowed, tau, k):
    """Row i of D^-1 S': allowed columns, exp(cos / tau), keep > (k+1)-th largest, normalise."""
    values = {j: math.exp(_cos(x[i], x[j]) / tau) for j in allowed}
    ordered = sorted(values.values(), reverse=True)
    threshold = ordered[k] if len(ordered) > k else -math.inf  # ordered[k] is the (k+1)-th
    kept = {j: v for j, v in values.items() if v > threshold}
    total = sum(kept.values())
    row = [0.0] * x.shape[0]
    for j, v in kept.items():
        row[j] = v / total
    return row


def reference_affinity(x, is_query, tau_hom, tau_het, k, self_loops=True):
    x = x.double()
    n = x.shape[0]
    rows = []
    for i in range(n):
        if is_query[i]:  # heterogeneous: the gallery and itself
            allowed = [j for j in range(n) if not is_query[j] or j == i]
            tau = tau_het
        else:  # homogeneous: the gallery (itself included)
            allowed = [j for j in range(n) if not is_query[j]]
            tau = tau_hom
        if not self_loops:
            allowed = [j for j in allowed if j != i]
        rows.append(_reference_row(x, i, allowed, tau, k))
    return torch.tensor(rows, dtype=torch.float64)


def reference_gft(x, tau, k, self_loops=True):
    x = x.double()
    n = x.shape[0]
    rows = []
    for i in range(n):
        allowed = [j for j in range(n) if self_loops or j != i]
        rows.append(_reference_row(x, i, allowed, tau, k))
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# Layouts: (is_visible or None, is_query) in batch order.
# ---------------------------------------------------------------------------------------------


def _training_visible(p=4, k=3):
    # The sampler's [P x K visible ; P x K infrared].
    return torch.tensor([True] * (p * k) + [False] * (p * k))


def _layout(name):
    if name in TRAINING_MODES:
        return training_query_mask(_training_visible(), name)
    if name == "test_time":  # [30 gallery ; 50 queries]
        return torch.tensor([False] * 30 + [True] * 50)
    if name == "tiny":  # fewer allowed entries than k + 1 in every row
        return torch.tensor([False, False, True])
    raise KeyError(name)


LAYOUTS = ["r2i", "i2r", "test_time", "tiny"]
DTYPES = [torch.float32, torch.float64]


def _features(n, d=16, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64).to(dtype)


def _allowed_count(is_query, i, self_loops):
    count = int((~is_query).sum()) + int(bool(is_query[i]))
    return count - (0 if self_loops else 1)


# ---------------------------------------------------------------------------------------------
# affinity / transfer against the reference.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("self_loops", [True, False])
def test_affinity_matches_reference(dtype, layout, k, self_loops):
    is_query = _layout(layout)
    x = _features(len(is_query), dtype=dtype, seed=k)
    a = affinity(x, is_query, GraphSettings(tau_hom=TAU_HOM, tau_het=TAU_HET, k=k),
                 self_loops=self_loops)
    expected = reference_affinity(x, is_query, TAU_HOM, TAU_HET, k, self_loops)
    assert a.dtype == dtype and a.shape == (len(is_query),) * 2
    assert torch.equal(a > 0, expected > 0)  # the same entries survive the top-k
    torch.testing.assert_close(a, expected.to(dtype), **TOLERANCES[dtype])


def test_defaults_are_the_paper_recipe():
    is_query = _layout("test_time")
    x = _features(len(is_query))
    expected = reference_affinity(x, is_query, 0.4, 0.2, 4)
    torch.testing.assert_close(affinity(x, is_query, GraphSettings()), expected)


# ---------------------------------------------------------------------------------------------
# Properties: masks, top-k including self, row sums.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["r2i", "i2r", "test_time"])
@pytest.mark.parametrize("self_loops", [True, False])
def test_masks_topk_and_row_sums(layout, self_loops):
    is_query = _layout(layout)
    n, k = len(is_query), 4
    a = affinity(_features(n, seed=7), is_query, GraphSettings(k=k), self_loops=self_loops)
    queries, gallery = is_query.nonzero().flatten(), (~is_query).nonzero().flatten()
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    # Queries never see other queries; gallery rows never see queries.
    assert (a[queries][:, queries][off_diagonal[queries][:, queries]] == 0).all()
    assert (a[gallery][:, queries] == 0).all()
    # Random features have no ties: exactly min(k, allowed) entries per row, self counted.
    nonzeros = (a > 0).sum(dim=1)
    for i in range(n):
        assert nonzeros[i] == min(k, _allowed_count(is_query, i, self_loops))
    diagonal = a.diagonal()
    assert (diagonal > 0).all() if self_loops else (diagonal == 0).all()
    torch.testing.assert_close(a.sum(dim=1), torch.ones(n, dtype=a.dtype))
    assert (a >= 0).all()


def test_self_is_one_of_the_k_entries():
    # k = 4 including self: each gallery row keeps itself and its 3 most similar other nodes.
    is_query = torch.zeros(10, dtype=torch.bool)
    x = _features(10, seed=11)
    a = affinity(x, is_query, GraphSettings(k=4))
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    for i in range(10):
        others = cos[i].clone()
        others[i] = -math.inf
        expected = {i} | set(others.topk(3).indices.tolist())
        assert set(a[i].nonzero().flatten().tolist()) == expected


def test_each_query_is_one_query_against_the_gallery():
    # A query row depends only on the gallery and itself: the test-time graph with 50 queries
    # gives the same query rows as 50 graphs of one query each (and as any chunking).
    is_query = _layout("test_time")
    x = _features(len(is_query), seed=5)
    full = affinity(x, is_query, GraphSettings()) @ x
    n_gallery = 30
    for q in (30, 41, 79):
        single = torch.cat([x[:n_gallery], x[q : q + 1]])
        single_is_query = torch.tensor([False] * n_gallery + [True])
        y = affinity(single, single_is_query, GraphSettings()) @ single
        torch.testing.assert_close(y[-1], full[q])
    gallery, gallery_is_query = x[:n_gallery], is_query[:n_gallery]
    torch.testing.assert_close(affinity(gallery, gallery_is_query, GraphSettings()) @ gallery,
                               full[:n_gallery])


def test_leading_dimensions_are_independent_graphs():
    is_query = _layout("r2i")
    x = torch.stack([_features(len(is_query), seed=s) for s in range(3)])
    batched = affinity(x, is_query, GraphSettings(), self_loops=False)
    assert batched.shape == (3, len(is_query), len(is_query))
    for s in range(3):
        torch.testing.assert_close(batched[s],
                                   affinity(x[s], is_query, GraphSettings(), self_loops=False))


def test_features_need_not_be_normalised_and_are_not_modified():
    is_query = _layout("i2r")
    x = _features(len(is_query), seed=2)
    before = x.clone()
    scaled = x * torch.linspace(0.1, 10, len(is_query))[:, None]
    torch.testing.assert_close(affinity(scaled, is_query, GraphSettings()),
                               affinity(x, is_query, GraphSettings()))
    assert torch.equal(x, before)


def test_small_temperatures_stay_finite():
    # exp(1 / 0.005) overflows float32; the row shift keeps it finite and normalised.
    is_query = _layout("test_time")
    x = _features(len(is_query), dtype=torch.float32, seed=4)
    a = affinity(x, is_query, GraphSettings(tau_hom=0.005, tau_het=0.005, k=4), self_loops=False)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a.sum(dim=1), torch.ones(len(is_query)))


def test_rows_without_allowed_entries_are_zero():
    # One gallery node without self-loops: its row has nothing to see; queries see only it.
    is_query = torch.tensor([False, True, True])
    a = affinity(_features(3), is_query, GraphSettings(), self_loops=False)
    expected = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.float64)
    assert torch.equal(a, expected)
    # Only queries and self-loops: each node is its own only neighbour.
    only_queries = torch.ones(4, dtype=torch.bool)
    assert torch.equal(affinity(_features(4), only_queries, GraphSettings()),
                       torch.eye(4, dtype=torch.float64))


def test_gradients_match_finite_differences():
    is_query = torch.tensor([False, False, False, False, True, True])
    x = _features(6, d=4, seed=9).requires_grad_()
    for settings in (GraphSettings(k=3), GraphSettings("gft", k=3)):  # Y = A·X
        assert torch.autograd.gradcheck(lambda v, s=settings: affinity(v, is_query, s) @ v, (x,))
    assert torch.autograd.gradcheck(
        lambda v: affinity(v, is_query, GraphSettings(k=2), self_loops=False), (x,))


# ---------------------------------------------------------------------------------------------
# Ties: "strictly greater than the (k+1)-th largest" keeps fewer than k entries.
# Features are small integers so that every dot product is exact: duplicate features then give
# bitwise-equal similarities in any summation order (random floats would not, in any BLAS).
# ---------------------------------------------------------------------------------------------


def test_orthogonal_features_keep_only_self():
    # Every other entry is exp(0): the 5th largest ties with the 2nd, so only self survives.
    x = torch.eye(6, dtype=torch.float64)
    is_query = torch.zeros(6, dtype=torch.bool)
    assert torch.equal(affinity(x, is_query, GraphSettings(k=4)), torch.eye(6, dtype=torch.float64))
    assert torch.equal(affinity(x, ~is_query, GraphSettings("gft", k=4)),
                       torch.eye(6, dtype=torch.float64))
    # k >= 6 leaves every row with at most k allowed entries: all kept, uniform off the diagonal.
    torch.testing.assert_close(
        affinity(x, is_query, GraphSettings(k=6)),
        reference_affinity(x, is_query, TAU_HOM, TAU_HET, 6)
    )
    assert ((affinity(x, is_query, GraphSettings(k=6)) > 0).sum(dim=1) == 6).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_duplicate_neighbours_tie(dtype):
    u, v, w = [2.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    x = torch.tensor([u, v, v, w], dtype=dtype)  # nodes 1 and 2 are duplicates
    is_query = torch.zeros(4, dtype=torch.bool)
    # Row u: self > v = v > w. k = 2: the 3rd largest is v, so the tied pair is dropped.
    a2 = affinity(x, is_query, GraphSettings(k=2))
    assert torch.equal(a2[0], torch.tensor([1.0, 0, 0, 0], dtype=dtype))
    # k = 3: the 4th largest is w, so self and both duplicates are kept (exactly k).
    a3 = affinity(x, is_query, GraphSettings(k=3))
    assert (a3[0, :3] > 0).all() and a3[0, 3] == 0 and a3[0, 1] == a3[0, 2]
    # Row v: self and its duplicate tie at the top; with k = 1 nothing is strictly above the
    # 2nd largest, so the row is empty (all zeros).
    a1 = affinity(x, is_query, GraphSettings(k=1))
    assert (a1[1] == 0).all() and (a1[2] == 0).all()
    for k, a in ((1, a1), (2, a2), (3, a3)):
        expected = reference_affinity(x, is_query, TAU_HOM, TAU_HET, k).to(dtype)
        assert torch.equal(a > 0, expected > 0)
        torch.testing.assert_close(a, expected, **TOLERANCES[dtype])


def test_query_duplicating_a_gallery_node():
    gallery = [[3.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 2.0]]
    x = torch.tensor(gallery + [[1.0, 2.0, 0.0], [1.0, 2.0, 0.0]], dtype=torch.float64)
    is_query = torch.tensor([False] * 4 + [True, True])  # two queries equal to gallery node 1
    for k in (1, 2, 4):
        for self_loops in (True, False):
            a = affinity(x, is_query, GraphSettings(k=k), self_loops=self_loops)
            expected = reference_affinity(x, is_query, TAU_HOM, TAU_HET, k, self_loops)
            assert torch.equal(a > 0, expected > 0)
            torch.testing.assert_close(a, expected)
    # With k = 1 the query ties with its gallery twin at the top: its row is empty. Without
    # self-loops the twin is the unique best neighbour.
    assert (affinity(x, is_query, GraphSettings(k=1))[4] == 0).all()
    assert affinity(x, is_query, GraphSettings(k=1), self_loops=False)[4, 1] == 1
    # The identical queries never see each other.
    assert affinity(x, is_query, GraphSettings())[4, 5] == 0


# ---------------------------------------------------------------------------------------------
# GFT.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("self_loops", [True, False])
def test_gft_matches_reference(dtype, k, self_loops):
    x = _features(24, dtype=dtype, seed=20 + k)
    is_query = torch.arange(24) >= 12  # GFT has no queries: the flags are ignored
    a = affinity(x, is_query, GraphSettings("gft", tau_hom=0.3, k=k), self_loops=self_loops)
    expected = reference_gft(x, 0.3, k, self_loops)
    assert torch.equal(a > 0, expected > 0)
    torch.testing.assert_close(a, expected.to(dtype), **TOLERANCES[dtype])
    assert ((a > 0).sum(dim=1) == k).all()
    diagonal = a.diagonal()
    assert (diagonal > 0).all() if self_loops else (diagonal == 0).all()


def test_gft_uses_tau_hom_only():
    x = _features(24, seed=31)
    is_query = torch.arange(24) % 2 == 0
    expected = reference_gft(x, TAU_GFT, 4)
    torch.testing.assert_close(affinity(x, is_query, GraphSettings("gft", tau_het=0.01)), expected)


def test_gft_sees_across_the_query_gallery_split():
    # GFT has no masks: it is H2FT without queries.
    with_queries = _layout("r2i")
    x = _features(len(with_queries), seed=8)
    settings = GraphSettings("gft", tau_hom=0.3, tau_het=0.1, k=3)
    assert torch.equal(affinity(x, with_queries, settings),
                       affinity(x, torch.zeros_like(with_queries), GraphSettings(tau_hom=0.3, k=3)))
    queries = with_queries.nonzero().flatten()
    assert (affinity(x, with_queries, settings)[queries][:, queries].sum(dim=1) > 0).all()
    assert not settings.queries(with_queries).any()
    assert GraphSettings().queries(with_queries) is with_queries


# ---------------------------------------------------------------------------------------------
# Masks and modes.
# ---------------------------------------------------------------------------------------------


def test_neighbour_mask():
    is_query = torch.tensor([False, False, True, True])
    expected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(neighbour_mask(is_query), expected)
    assert torch.equal(neighbour_mask(is_query, self_loops=False), expected & ~torch.eye(4).bool())


def test_training_query_mask():
    is_visible = _training_visible()
    assert torch.equal(training_query_mask(is_visible, "r2i"), is_visible)
    assert torch.equal(training_query_mask(is_visible, "i2r"), ~is_visible)
    before = is_visible.clone()
    training_query_mask(is_visible, "r2i")[0] = False
    assert torch.equal(is_visible, before)


def test_settings_from_config():
    from cift import load_config
    from helpers import DEMO_CIFT

    cfg = load_config(DEMO_CIFT, ["MODEL.CIFT.GRAPH", "gft", "MODEL.CIFT.TAU_HOM", "0.3",
                                  "MODEL.CIFT.TAU_HET", "0.1", "MODEL.CIFT.TOPK", "3"])
    assert GraphSettings.from_config(cfg) == GraphSettings("gft", 0.3, 0.1, 3)
    assert GraphSettings.from_config(load_config(DEMO_CIFT)) == GraphSettings()  # the paper's


@requires_cuda
def test_cuda_matches_cpu():
    is_query = _layout("test_time")
    x = _features(len(is_query), dtype=torch.float32)
    for settings in (GraphSettings(), GraphSettings("gft")):
        a = affinity(x.cuda(), is_query, settings)  # is_query may stay on the CPU
        assert a.device.type == "cuda"
        torch.testing.assert_close(a.cpu(), affinity(x, is_query, settings), rtol=1e-4, atol=1e-5)

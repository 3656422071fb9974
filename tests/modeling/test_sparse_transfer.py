"""The neighbour-list test-time transfer equals the dense one, and the model switches to it."""

import pytest
import torch
from fastreid.modeling.meta_arch import build_model

from cift import load_config
from cift.modeling import graph
from cift.modeling.graph import (
    sparse_transfer_gallery_queries,
    transfer,
    transfer_gallery_queries,
)
from cift.neighbours import nearest_neighbours, self_nearest_neighbours
from helpers import DEMO_CIFT

SIZES = [(1, 1), (3, 5), (30, 50), (257, 129), (64, 700)]


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("k", [1, 4, 9])
@pytest.mark.parametrize("num_g, num_q", SIZES)
def test_sparse_equals_dense(num_g, num_q, k, backend):
    torch.manual_seed(num_g * 1000 + num_q + k)
    g, q = torch.randn(num_g, 24), torch.randn(num_q, 24)
    want = transfer_gallery_queries(g, q, k=k)
    got = sparse_transfer_gallery_queries(g, q, k=k, block=50, backend=backend)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_sparse_equals_the_dense_graph_of_the_whole_layout_float64():
    torch.manual_seed(0)
    g, q = torch.randn(40, 8, dtype=torch.float64), torch.randn(60, 8, dtype=torch.float64)
    is_query = torch.arange(100) >= 40
    dense = transfer(torch.cat([g, q]), is_query, tau_hom=0.3, tau_het=0.1, k=3)
    g_out, q_out = sparse_transfer_gallery_queries(g, q, tau_hom=0.3, tau_het=0.1, k=3, block=7)
    torch.testing.assert_close(torch.cat([g_out, q_out]), dense, atol=1e-12, rtol=0)


def test_separate_keys_rank_while_values_are_transferred():
    torch.manual_seed(1)
    g, q = torch.randn(50, 6), torch.randn(20, 6)
    gk, qk = torch.randn(50, 4), torch.randn(20, 4)
    want = transfer_gallery_queries(g, q, gallery_keys=gk, query_keys=qk)
    got = sparse_transfer_gallery_queries(g, q, gallery_keys=gk, query_keys=qk, block=16)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_nearest_neighbours_against_a_full_sort():
    torch.manual_seed(2)
    q, b = torch.randn(33, 5), torch.randn(70, 5)
    sims, idx = nearest_neighbours(q, b, 6, block=8)
    full = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    want_sims, want_idx = full.sort(dim=1, descending=True)
    torch.testing.assert_close(sims, want_sims[:, :6])
    assert torch.equal(idx, want_idx[:, :6])
    assert nearest_neighbours(q, b[:3], 6)[0].shape == (33, 3)
    with pytest.raises(ValueError, match="backend"):
        nearest_neighbours(q, b, 2, backend="annoy")


@pytest.mark.parametrize("num, n, block", [(1, 3, 4), (7, 7, 3), (70, 6, 8), (70, 6, 70),
                                           (101, 9, 16), (40, 100, 7)])
def test_self_nearest_neighbours_against_a_full_sort(num, n, block):
    torch.manual_seed(num + n)
    x = torch.randn(num, 5, dtype=torch.float64)
    sims, idx = self_nearest_neighbours(x, n, block=block)
    unit = torch.nn.functional.normalize(x, dim=1)
    want_sims, want_idx = (unit @ unit.T).sort(dim=1, descending=True)
    kept = min(n, num)
    torch.testing.assert_close(sims, want_sims[:, :kept], atol=1e-12, rtol=0)
    assert torch.equal(idx, want_idx[:, :kept])
    faiss_sims, faiss_idx = self_nearest_neighbours(x.float(), n, backend="faiss")
    torch.testing.assert_close(faiss_sims.double(), want_sims[:, :kept], atol=1e-5, rtol=0)
    assert torch.equal(faiss_idx, want_idx[:, :kept])


def test_weighted_rows_sum_neighbours_through_a_valid_csr_matrix():
    torch.manual_seed(4)
    weights, values = torch.rand(6, 3), torch.randn(9, 5)
    idx = torch.stack([torch.randperm(9)[:3] for _ in range(6)])  # unsorted, as topk gives
    want = sum(weights[:, j:j + 1] * values[idx[:, j]] for j in range(3))
    torch.testing.assert_close(graph._weighted_rows(weights, idx, values), want)
    matrix = graph._neighbour_matrix(weights, idx, 9)
    columns = matrix.col_indices().reshape(6, 3)
    assert bool((columns[:, 1:] > columns[:, :-1]).all())  # sorted and distinct per row
    torch.testing.assert_close(matrix.to_dense(), torch.zeros(6, 9).scatter(1, idx, weights))


def cift(*opts: str):
    cfg = load_config(DEMO_CIFT,
                      ["MODEL.HEADS.NUM_CLASSES", "5", *opts])
    return build_model(cfg).eval()


@pytest.mark.parametrize("opts, sparse", [
    (("TEST.TRANSFER.MODE", "auto", "TEST.TRANSFER.SPARSE_ABOVE", "100"), True),
    (("TEST.TRANSFER.MODE", "auto", "TEST.TRANSFER.SPARSE_ABOVE", "200"), False),
    (("TEST.TRANSFER.MODE", "sparse"), True),
    (("TEST.TRANSFER.MODE", "dense", "TEST.TRANSFER.SPARSE_ABOVE", "1"), False),
])
def test_model_switches_by_size_or_config(opts, sparse, monkeypatch):
    from cift.modeling.meta_arch import cift as cift_module

    calls = []
    for name in ("transfer_gallery_queries", "sparse_transfer_gallery_queries"):
        original = getattr(graph, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(cift_module, name, spy)
    model = cift(*opts)
    torch.manual_seed(3)
    g, q = torch.randn(60, 512), torch.randn(90, 512)
    out = model.transfer_test_features(g, q, "i2r")
    assert calls == ["sparse_transfer_gallery_queries" if sparse else "transfer_gallery_queries"]
    reference = cift("TEST.TRANSFER.MODE", "dense").transfer_test_features(g, q, "i2r")
    for a, b in zip(out, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bad_transfer_options_name_the_key():
    from cift import CiftInputError

    with pytest.raises(CiftInputError, match="TEST.TRANSFER.MODE"):
        cift("TEST.TRANSFER.MODE", "lazy")
    with pytest.raises(CiftInputError, match="TEST.SEARCH.BACKEND"):
        cift("TEST.SEARCH.BACKEND", "annoy")

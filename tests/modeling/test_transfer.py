"""The test-time transfer: its three forms give one result, the dense one is the training graph's
affinity over [gallery ; queries], and the model picks the form TEST.TRANSFER asks for."""

import pytest
import torch
import torch.nn.functional as F
from fastreid.modeling.meta_arch import build_model

from cift import load_config
from cift.modeling import transfer
from cift.modeling.graph import GraphSettings, affinity
from cift.modeling.transfer import test_time_transfer
from cift.neighbours import nearest_neighbours, self_nearest_neighbours
from helpers import DEMO_CIFT

SIZES = [(1, 1), (3, 5), (30, 50), (257, 129), (64, 700)]


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("k", [1, 4, 9])
@pytest.mark.parametrize("num_g, num_q", SIZES)
def test_sparse_equals_dense(num_g, num_q, k, backend):
    torch.manual_seed(num_g * 1000 + num_q + k)
    g, q = torch.randn(num_g, 24), torch.randn(num_q, 24)
    settings = GraphSettings(k=k)
    want = test_time_transfer(g, q, settings, "chunked")
    got = test_time_transfer(g, q, settings, "sparse", backend, block=50)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_forms_equal_the_dense_graph_of_the_whole_layout_float64():
    torch.manual_seed(0)
    g, q = torch.randn(40, 8, dtype=torch.float64), torch.randn(60, 8, dtype=torch.float64)
    settings = GraphSettings(tau_hom=0.3, tau_het=0.1, k=3)
    x = F.normalize(torch.cat([g, q]), dim=1)
    dense = F.normalize(affinity(x, torch.arange(100) >= 40, settings) @ x, dim=1)
    for form, block in (("dense", 1024), ("chunked", 7), ("sparse", 7)):
        g_out, q_out = test_time_transfer(g, q, settings, form, block=block)
        torch.testing.assert_close(torch.cat([g_out, q_out]), dense, atol=1e-12, rtol=0)


def test_gft_is_one_dense_graph_in_every_form():
    torch.manual_seed(5)
    g, q = torch.randn(30, 8, dtype=torch.float64), torch.randn(20, 8, dtype=torch.float64)
    settings = GraphSettings("gft", tau_hom=0.3, k=3)
    x = F.normalize(torch.cat([g, q]), dim=1)
    everyone = F.normalize(affinity(x, torch.zeros(50, dtype=torch.bool), settings) @ x, dim=1)
    assert not torch.allclose(everyone, torch.cat(test_time_transfer(g, q, GraphSettings())))
    for form in ("dense", "chunked", "sparse"):
        torch.testing.assert_close(torch.cat(test_time_transfer(g, q, settings, form)), everyone,
                                   atol=1e-12, rtol=0)


def test_three_forms_agree_at_7k_nodes():
    # 6,000 gallery + 1,000 queries, d = 64, float32: random features have no ties.
    torch.manual_seed(7)
    g, q = torch.randn(6000, 64), torch.randn(1000, 64)
    dense = test_time_transfer(g, q, GraphSettings(), "dense")
    for form in ("chunked", "sparse"):
        for a, b in zip(test_time_transfer(g, q, GraphSettings(), form), dense, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_separate_keys_rank_while_values_are_transferred():
    torch.manual_seed(1)
    g, q = torch.randn(50, 6), torch.randn(20, 6)
    gk, qk = torch.randn(50, 4), torch.randn(20, 4)
    keys = {"gallery_keys": gk, "query_keys": qk}
    want = test_time_transfer(g, q, GraphSettings(), "dense", **keys)
    x = F.normalize(torch.cat([g, q]), dim=1)
    y = affinity(torch.cat([gk, qk]), torch.arange(70) >= 50, GraphSettings()) @ x
    torch.testing.assert_close(torch.cat(want), F.normalize(y, dim=1))
    for form in ("chunked", "sparse"):
        got = test_time_transfer(g, q, GraphSettings(), form, block=16, **keys)
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
    torch.testing.assert_close(transfer.weighted_rows(weights, idx, values), want)
    matrix = transfer.neighbour_matrix(weights, idx, 9)
    columns = matrix.col_indices().reshape(6, 3)
    assert bool((columns[:, 1:] > columns[:, :-1]).all())  # sorted and distinct per row
    torch.testing.assert_close(matrix.to_dense(), torch.zeros(6, 9).scatter(1, idx, weights))


def cift(*opts: str):
    cfg = load_config(DEMO_CIFT,
                      ["MODEL.HEADS.NUM_CLASSES", "5", *opts])
    return build_model(cfg).eval()


@pytest.mark.parametrize("opts, form", [
    (("TEST.TRANSFER.MODE", "auto", "TEST.TRANSFER.SPARSE_ABOVE", "100"), "sparse"),
    (("TEST.TRANSFER.MODE", "auto", "TEST.TRANSFER.SPARSE_ABOVE", "200"), "chunked"),
    (("TEST.TRANSFER.MODE", "sparse"), "sparse"),
    (("TEST.TRANSFER.MODE", "dense", "TEST.TRANSFER.SPARSE_ABOVE", "1"), "chunked"),
])
def test_model_switches_by_size_or_config(opts, form, monkeypatch):
    from cift.modeling.meta_arch import cift as cift_module

    forms = []

    def spy(*args, **kwargs):
        forms.append(args[3])
        return test_time_transfer(*args, **kwargs)

    monkeypatch.setattr(cift_module, "test_time_transfer", spy)
    model = cift(*opts)
    torch.manual_seed(3)
    g, q = torch.randn(60, 512), torch.randn(90, 512)
    out = model.transfer_test_features(g, q, "i2r")
    assert forms == [form]
    reference = test_time_transfer(g, q, GraphSettings(), "dense")
    for a, b in zip(out, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bad_transfer_options_name_the_key():
    from cift import CiftInputError

    with pytest.raises(CiftInputError, match="TEST.TRANSFER.MODE"):
        cift("TEST.TRANSFER.MODE", "lazy")
    with pytest.raises(CiftInputError, match="TEST.SEARCH.BACKEND"):
        cift("TEST.SEARCH.BACKEND", "annoy")


def plain_cosines(g, q, g_weights, g_idx, q_weights, q_idx, self_weights):
    """cos(q'_i, g'_j) of g'_j = sum_m a_jm g[c_jm] and q'_i = sum_m b_im g[c'_im] + s_i q_i,
    built one vector at a time."""
    def combine(weights, idx, extra=None):
        out = sum(float(w) * g[int(c)] for w, c in zip(weights, idx, strict=True))
        return out if extra is None else out + extra

    g_out = [combine(g_weights[j], g_idx[j]) for j in range(len(g))]
    q_out = [combine(q_weights[i], q_idx[i], float(self_weights[i]) * q[i])
             for i in range(len(q))]
    return torch.tensor([[float(a @ b / (a.norm() * b.norm())) for b in g_out] for a in q_out],
                        dtype=torch.float64)


@pytest.mark.parametrize("num_g, k", [(9, 3), (4, 4), (30, 2)])
def test_transferred_cosines_against_the_combined_vectors(num_g, k):
    torch.manual_seed(num_g)
    settings = GraphSettings(k=k, tau_hom=0.3, tau_het=0.2)
    g = F.normalize(torch.randn(num_g, 6, dtype=torch.float64), dim=1)
    q = F.normalize(torch.randn(7, 6, dtype=torch.float64), dim=1)
    lists = self_nearest_neighbours(g, k + 1), nearest_neighbours(q, g, k + 1)
    g_weights, q_weights, self_weights = transfer.list_weights(q, settings, *lists)
    got = transfer.transferred_cosines(g_weights, lists[0][1], q_weights, lists[1][1],
                                       self_weights, g @ g.T, q @ g.T, (q * q).sum(dim=1))
    want = plain_cosines(g, q, g_weights, lists[0][1], q_weights, lists[1][1], self_weights)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # and they are the cosines of the sparse form's outputs
    g_out, q_out = transfer.transfer_from_lists(g, q, q, settings, *lists)
    torch.testing.assert_close(got, q_out @ g_out.T, rtol=0, atol=1e-12)

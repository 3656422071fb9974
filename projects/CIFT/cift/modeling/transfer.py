"""Test-time transfer: CIFT's graph over ``[gallery ; queries]`` (supplementary eq. 8, Y = A·X), in
three forms that give one result (ties aside) at different memory costs.

Under H2FT a gallery row sees the gallery and a query row sees the gallery and itself, so each
query row is "one query against the gallery" and query rows can be built apart from each
other. GFT has no queries (every node sees every node) and is one dense graph in every form.
"""
from __future__ import annotations

import warnings

import torch

from ..neighbours import NORM_FLOOR, nearest_neighbours, self_nearest_neighbours, unit_rows
from .graph import GraphSettings, affinity, row_weights

__all__ = ["FORMS", "test_time_transfer"]

# dense: the (G+Q)^2 graph; chunked: the G^2 gallery graph and query rows `block` at a time;
# sparse: top-(k+1) neighbour lists, O((G + Q)(k + d)) plus one (block, G) similarity block.
FORMS = ("dense", "chunked", "sparse")


def test_time_transfer(gallery: torch.Tensor, queries: torch.Tensor, settings: GraphSettings,
                       form: str = "chunked", backend: str = "torch",
                       gallery_keys: torch.Tensor | None = None,
                       query_keys: torch.Tensor | None = None, block: int = 1024
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer the gallery and the queries on their test graph.

    Args:
        gallery: (G, d) and queries: (Q, d) features, L2-normalised here.
        settings: the model's graph.
        form: one of :data:`FORMS`.
        backend: neighbour search of the sparse form, "torch" or "faiss".
        gallery_keys, query_keys: (G, d'), (Q, d') keys v(x) the similarities are computed
            from; default the normalised features.
        block: query rows per chunk; rows and columns per similarity tile.

    Returns:
        (G, d) gallery and (Q, d) queries transferred, L2-normalised.
    """
    g, q = unit_rows(gallery), unit_rows(queries)
    g_keys = g if gallery_keys is None else gallery_keys
    q_keys = q if query_keys is None else query_keys
    if form == "dense" or settings.graph == "gft":  # GFT: no query rows to build apart
        x = torch.cat([g, q])
        is_query = torch.arange(x.shape[0], device=x.device) >= g.shape[0]
        y = affinity(torch.cat([g_keys, q_keys]), is_query, settings) @ x
        g_out, q_out = y[:g.shape[0]], y[g.shape[0]:]
    elif form == "chunked":
        no_query = torch.zeros(g.shape[0], dtype=torch.bool, device=g.device)
        g_out = affinity(g_keys, no_query, settings) @ g
        g_unit, outs = unit_rows(g_keys), []
        for start in range(0, q.shape[0], block):
            chunk = slice(start, start + block)
            w = query_rows(unit_rows(q_keys[chunk]) @ g_unit.T, q_keys[chunk], settings)
            outs.append(w[:, :-1] @ g + w[:, -1:] * q[chunk])
        q_out = torch.cat(outs) if outs else q[:0]
    else:
        k = settings.k
        g_sims, g_idx = self_nearest_neighbours(g_keys, k + 1, block, backend)  # self among them
        g_out = weighted_rows(row_weights(g_sims / float(settings.tau_hom), k), g_idx, g)
        q_sims, q_idx = nearest_neighbours(q_keys, g_keys, k + 1, block, backend)
        w = query_rows(q_sims, q_keys, settings)
        q_out = weighted_rows(w[:, :-1], q_idx, g) + w[:, -1:] * q
    return unit_rows(g_out), unit_rows(q_out)


test_time_transfer.__test__ = False  # not a test, for pytest in modules that import it by name


def query_rows(gallery_sims: torch.Tensor, query_keys: torch.Tensor, settings: GraphSettings
               ) -> torch.Tensor:
    """Heterogeneous rows: (n, m) cosine similarities of n queries to m gallery candidates (every
    gallery node, or a superset of the k nearest) and (n, d') keys -> (n, m + 1) weights on
    ``[candidates..., self]``."""
    self_sims = (query_keys * query_keys).sum(dim=1, keepdim=True) / query_keys.norm(
        dim=1, keepdim=True).clamp_min(NORM_FLOOR).pow(2)  # cos(x, x) as the graph computes it
    logits = torch.cat([gallery_sims, self_sims], dim=1) / float(settings.tau_het)
    return row_weights(logits, settings.k)


def weighted_rows(weights: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """sum_j weights[:, j] * values[idx[:, j]]: (n, m), (n, m), (V, d) -> (n, d), as one sparse
    matmul, so that no (n, m, d) tensor is formed."""
    return neighbour_matrix(weights, idx, values.shape[0]) @ values


def neighbour_matrix(weights: torch.Tensor, idx: torch.Tensor, num_cols: int) -> torch.Tensor:
    """The (n, num_cols) sparse CSR matrix with ``weights[i, j]`` at column ``idx[i, j]``; each
    row's indices must be distinct (neighbour lists are)."""
    n, m = weights.shape
    idx, order = idx.sort(dim=1)  # CSR keeps each row's column indices sorted
    crow = torch.arange(0, n * m + 1, m, device=weights.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, idx.reshape(-1), weights.gather(1, order).reshape(-1),
                                       size=(n, num_cols), check_invariants=False)

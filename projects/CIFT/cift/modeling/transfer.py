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

__all__ = ["FORMS", "PoolNeighbours", "list_weights", "test_time_transfer", "transfer_from_lists",
           "transferred_cosines"]

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
        n = settings.k + 1
        return transfer_from_lists(g, q, q_keys, settings,
                                   self_nearest_neighbours(g_keys, n, block, backend),  # self too
                                   nearest_neighbours(q_keys, g_keys, n, block, backend))
    return unit_rows(g_out), unit_rows(q_out)


test_time_transfer.__test__ = False  # not a test, for pytest in modules that import it by name


def transfer_from_lists(g: torch.Tensor, q: torch.Tensor, q_keys: torch.Tensor,
                        settings: GraphSettings, gallery_lists: tuple[torch.Tensor, torch.Tensor],
                        query_lists: tuple[torch.Tensor, torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The H2FT transfer of the sparse form from its neighbour lists.

    Args:
        g: (G, d) and q: (Q, d) unit features. q_keys: (Q, d') the queries' keys.
        settings: the model's graph (H2FT).
        gallery_lists: (G, n) cosine similarities of each gallery node's n nearest gallery
            nodes (itself among them), descending, and their (G, n) indices into g.
        query_lists: (Q, n) similarities of each query's n nearest gallery nodes and indices.
    Returns:
        (G, d) gallery and (Q, d) queries transferred, L2-normalised.
    """
    g_weights, q_weights, self_weights = list_weights(q_keys, settings, gallery_lists,
                                                      query_lists)
    g_out = weighted_rows(g_weights, gallery_lists[1], g)
    q_out = weighted_rows(q_weights, query_lists[1], g) + self_weights[:, None] * q
    return unit_rows(g_out), unit_rows(q_out)


def list_weights(q_keys: torch.Tensor, settings: GraphSettings,
                 gallery_lists: tuple[torch.Tensor, torch.Tensor],
                 query_lists: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The H2FT rows of the sparse form, from the neighbour lists of :func:`transfer_from_lists`
    and the (Q, d') query keys: (G, n) weights of each gallery node on its listed neighbours,
    (Q, n) of each query on its listed gallery nodes and (Q,) on itself."""
    g_weights = row_weights(gallery_lists[0] / float(settings.tau_hom), settings.k)
    w = query_rows(query_lists[0], q_keys, settings)
    return g_weights, w[:, :-1], w[:, -1]


def transferred_cosines(g_weights: torch.Tensor, g_idx: torch.Tensor, q_weights: torch.Tensor,
                        q_idx: torch.Tensor, self_weights: torch.Tensor,
                        gallery_gallery: torch.Tensor, query_gallery: torch.Tensor,
                        query_self: torch.Tensor) -> torch.Tensor:
    r"""cos(q'_i, g'_j) of one trial's transferred features (:func:`transfer_from_lists`), from
    the products of the unit features they combine rather than from the features themselves.

    The outputs are normalised combinations of the unit gallery features u_g and the query's
    own u_q: :math:`g'_j \propto \sum_m a_{jm} u_{c_{jm}}`,
    :math:`q'_i \propto \sum_m b_{im} u_{c'_{im}} + s_i u_{q_i}`, so their inner products and
    norms are sums of a few entries of the trial's similarities, which its neighbour search
    has computed: O(Q G n) instead of the O(Q G d) product of the d-dimensional outputs. Equal
    to the cosines of the outputs up to rounding.

    Args:
        g_weights, g_idx: (G, n) weights of each gallery node on its neighbours and their
            indices into the gallery (:func:`list_weights`, the lists' indices).
        q_weights, q_idx: (Q, n) likewise for each query's gallery neighbours;
            self_weights: (Q,) each query's weight on itself.
        gallery_gallery: (G, G) u_g·u_g' (symmetric); query_gallery: (Q, G) u_q·u_g;
            query_self: (Q,) u_q·u_q.
    Returns:
        (Q, G) cosines, in the products' dtype.
    """
    num_gallery = gallery_gallery.shape[0]
    # (Q, G): each unnormalised q'_i against every gallery item
    q_gallery = neighbour_matrix(q_weights, q_idx, num_gallery) @ gallery_gallery \
        + self_weights[:, None] * query_gallery
    # (Q, G) inner products, as a sparse x dense product (the form every torch device has)
    gram = (neighbour_matrix(g_weights, g_idx, num_gallery) @ q_gallery.T.contiguous()).T
    gram = gram.contiguous()
    q_norm2 = _combination_norm2(q_weights, q_idx, gallery_gallery) \
        + 2 * self_weights * (q_weights * query_gallery.gather(1, q_idx)).sum(dim=1) \
        + self_weights * self_weights * query_self
    g_norm2 = _combination_norm2(g_weights, g_idx, gallery_gallery)
    return gram / (_norm(q_norm2)[:, None] * _norm(g_norm2)[None, :])


def _combination_norm2(weights: torch.Tensor, cols: torch.Tensor, gram: torch.Tensor
                       ) -> torch.Tensor:
    """|sum_m weights[:, m] u_{cols[:, m]}|^2 from the Gram matrix of the u: (n, m), (n, m),
    (V, V) -> (n,)."""
    pairs = gram[cols[:, :, None], cols[:, None, :]]  # (n, m, m)
    return (weights[:, :, None] * weights[:, None, :] * pairs).sum(dim=(1, 2))


def _norm(squared: torch.Tensor) -> torch.Tensor:
    """Norms from squared norms, floored as :func:`cift.neighbours.unit_rows` floors them."""
    return squared.clamp_min(0).sqrt().clamp_min(NORM_FLOOR)


class PoolNeighbours:
    """Cosine similarities of keys between the queries and the gallery pool that several trials
    draw from, and within that pool, computed once as two products; each trial's neighbour
    lists are the top-n of slices of them.

    A trial's lists select as the sparse form's own search does (the top-n of the same
    similarities, each gallery node among its own neighbours); the similarities differ from
    the trial's own products only by rounding (a slice of a larger product), which can swap
    the order of near-equal candidates.
    """

    def __init__(self, keys: torch.Tensor, queries: torch.Tensor, pool: torch.Tensor):
        """keys: (N, d') keys of every item; queries: (Qu,) and pool: (P,) sorted distinct
        int64 indices into keys of the trials' queries and gallery items."""
        unit = unit_rows(keys)
        self.queries, self.pool = queries, pool
        self.query_pool = unit[queries] @ unit[pool].T  # (Qu, P)
        self.pool_pool = unit[pool] @ unit[pool].T  # (P, P)

    @staticmethod
    def entries(num_queries: int, num_pool: int) -> int:
        """Similarities held for `num_queries` queries and a pool of `num_pool` items."""
        return num_queries * num_pool + num_pool * num_pool

    def trial_products(self, q: torch.Tensor, g: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """One trial's slices: (Q,) queries and (G,) gallery items, int64 indices into the keys
        -> the (G, G) similarities within its gallery and the (Q, G) of its queries to it."""
        rows, cols = torch.searchsorted(self.queries, q), torch.searchsorted(self.pool, g)
        query_pool = self.query_pool
        if rows.numel() != query_pool.shape[0] or not bool(
                (rows == torch.arange(rows.numel(), device=rows.device)).all()):
            query_pool = query_pool.index_select(0, rows)
        return (self.pool_pool.index_select(0, cols).index_select(1, cols),
                query_pool.index_select(1, cols))

    def lists(self, q: torch.Tensor, g: torch.Tensor, n: int,
              products: tuple[torch.Tensor, torch.Tensor] | None = None
              ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """One trial's neighbour lists: (Q,) queries and (G,) distinct gallery items, int64
        indices into the keys -> ((G, n') similarities and indices into g of each gallery node's
        nearest gallery nodes, (Q, n') of each query's), n' = min(n, G), as
        :func:`transfer_from_lists` takes them. ``products``: the trial's
        :meth:`trial_products` when the caller has them."""
        gallery_gallery, query_gallery = self.trial_products(q, g) if products is None \
            else products
        n = min(n, g.numel())
        gallery = gallery_gallery.topk(n, dim=1)
        queries = query_gallery.topk(n, dim=1)
        return (gallery.values, gallery.indices), (queries.values, queries.indices)


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

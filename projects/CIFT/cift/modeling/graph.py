"""Affinity graphs and one-layer feature transfer of CIFT: H2FT (with UBS masks) and GFT."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import torch

from ..branches import BRANCHES, R2I
from ..neighbours import NORM_FLOOR, nearest_neighbours, self_nearest_neighbours, unit_rows

__all__ = [
    "GRAPHS",
    "affinity",
    "gft_affinity",
    "gft_transfer",
    "graph_affinity",
    "graph_query_mask",
    "neighbour_mask",
    "sparse_transfer_gallery_queries",
    "training_query_mask",
    "transfer",
    "transfer_gallery_queries",
]

# Paper recipe (docs/design.md §1): tau_hom for gallery rows, tau_het for query rows, k
# including self.
DEFAULT_TAU_HOM = 0.4
DEFAULT_TAU_HET = 0.2
DEFAULT_K = 4
# GFT has a single tau (supplementary eq. 10) and no stated value; the homogeneous one is used
# because, without masks, a training batch's top-k neighbours are mostly same-modality nodes.
DEFAULT_TAU_GFT = DEFAULT_TAU_HOM

# Graph kinds: H2FT (query rows see the gallery and themselves) or GFT (one graph over all nodes).
GRAPHS = ("h2ft", "gft")


def affinity(
    x: torch.Tensor,
    is_query: torch.Tensor,
    tau_hom: float = DEFAULT_TAU_HOM,
    tau_het: float = DEFAULT_TAU_HET,
    k: int = DEFAULT_K,
    self_loops: bool = True,
) -> torch.Tensor:
    r"""Row-normalised H2FT affinity of a [gallery ; queries] graph with UBS masks.

    Reference:
        Li et al. Counterfactual Intervention Feature Transfer for Visible-Infrared Person
        Re-identification. ECCV 2022 (H2FT, UBS); docs/design.md §1.

    With :math:`s_{ij} = \cos(x_i, x_j)` and :math:`\tau_i = \tau_{het}` for a query row,
    :math:`\tau_{hom}` for a gallery row,

    .. math::

        S_{ij} = \exp(s_{ij} / \tau_i) \text{ for } j \in \mathcal{N}(i), \qquad
        S'_{ij} = S_{ij} \, [S_{ij} > S_i^{(k+1)}], \qquad
        A = D^{-1} S',

    where :math:`\mathcal{N}(i)` (see :func:`neighbour_mask`) is every gallery node plus ``i``
    itself: a gallery row sees the gallery (homogeneous graph, self included), a query row sees
    the gallery and itself (heterogeneous graph), queries never see other queries.
    :math:`S_i^{(k+1)}` is the (k+1)-th largest value of :math:`S_{ij}` over
    :math:`j \in \mathcal{N}(i)`, so a row keeps at most ``k`` entries, self counted (k = 4: self
    and 3 neighbours). Entries equal to the threshold are dropped, so values tied with the
    (k+1)-th largest make a row keep fewer than ``k`` entries (possibly only its largest values).
    A row with at most ``k`` allowed entries keeps all of them. :math:`D` is the diagonal of row
    sums of :math:`S'`.

    With ``self_loops=False`` the diagonal is removed from :math:`\mathcal{N}(i)` *before* the
    top-k, so each row keeps its ``k`` best other nodes (CRI's counterfactual graph, docs/design.md
    §1). A row left with no allowed entry (a lone gallery node, or a query when the graph has no
    gallery) is all zeros instead of 0/0.

    Each query row depends only on the gallery and on that query, so a test-time graph with many
    queries gives every query the "1 query vs N_G gallery" graph of the paper; query rows can also
    be computed in chunks with identical results.

    The exponential is evaluated relative to each row's largest allowed logit (a factor that the
    row normalisation cancels), so small temperatures neither overflow nor underflow to 0/0.

    Args:
        x (torch.Tensor): (..., N, d) node features, floating point; leading dimensions are
            independent graphs sharing ``is_query``. Need not be L2-normalised.
        is_query (torch.Tensor): (N,) bool, True for query nodes, False for gallery nodes.
        tau_hom (float): temperature of gallery rows, > 0.
        tau_het (float): temperature of query rows, > 0.
        k (int): entries kept per row, self included when ``self_loops``; >= 1.
        self_loops (bool): whether a node may be its own neighbour.

    Returns:
        torch.Tensor: (..., N, N) affinity ``A``, dtype and device of ``x``; every row with an
        allowed entry sums to 1.
    """
    _check_features(x)
    _check_is_query(is_query, x.shape[-2])
    _check_k(k)
    _check_tau("tau_hom", tau_hom)
    _check_tau("tau_het", tau_het)
    tau = torch.full(is_query.shape, float(tau_hom), dtype=x.dtype, device=x.device)
    is_query = is_query.to(x.device)
    tau = tau.masked_fill(is_query, float(tau_het))
    logits = _cosine_similarity(x) / tau[:, None]
    return _masked_topk_row_normalise(logits, neighbour_mask(is_query, self_loops), k)


def transfer(
    x: torch.Tensor,
    is_query: torch.Tensor,
    tau_hom: float = DEFAULT_TAU_HOM,
    tau_het: float = DEFAULT_TAU_HET,
    k: int = DEFAULT_K,
) -> torch.Tensor:
    """H2FT feature transfer ``Y = A X``: one layer, no weights, no residual.

    Args:
        x (torch.Tensor): (..., N, d) node features.
        is_query (torch.Tensor): (N,) bool, True for query nodes.
        tau_hom, tau_het, k: as in :func:`affinity` (self-loops kept).

    Returns:
        torch.Tensor: (..., N, d) transferred features, dtype and device of ``x``.
    """
    return affinity(x, is_query, tau_hom=tau_hom, tau_het=tau_het, k=k) @ x


def graph_query_mask(is_query: torch.Tensor, graph: str = "h2ft") -> torch.Tensor:
    """The query flags a graph kind builds its masks from: the one place GFT is defined.

    H2FT keeps the query/gallery split (UBS masks, see :func:`neighbour_mask`). GFT
    (supplementary §3, eqs. 8-10, the ablation baseline) is the graph in which every node is a
    gallery node: every node sees every node, with the gallery temperature only.

    Args:
        is_query (torch.Tensor): (N,) bool, True for query nodes.
        graph (str): one of :data:`GRAPHS`.

    Returns:
        torch.Tensor: (N,) bool, ``is_query`` (H2FT) or all False (GFT).
    """
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; known: {list(GRAPHS)}")
    return is_query if graph == "h2ft" else torch.zeros_like(is_query)


def graph_affinity(
    keys: torch.Tensor,
    is_query: torch.Tensor,
    graph: str = "h2ft",
    tau_hom: float = DEFAULT_TAU_HOM,
    tau_het: float = DEFAULT_TAU_HET,
    k: int = DEFAULT_K,
    self_loops: bool = True,
) -> torch.Tensor:
    """:func:`affinity` of a graph kind: H2FT with the masks of ``is_query``, GFT over all nodes
    (:func:`graph_query_mask`). What a CIFT branch builds from its keys v(x).

    Args:
        keys (torch.Tensor): (..., N, d) features the similarities are computed from.
        is_query (torch.Tensor): (N,) bool, True for query nodes (ignored by GFT).
        graph (str): "h2ft" or "gft".
        tau_hom, tau_het, k, self_loops: as in :func:`affinity`.

    Returns:
        torch.Tensor: (..., N, N) affinity.
    """
    return affinity(keys, graph_query_mask(is_query, graph), tau_hom=tau_hom, tau_het=tau_het,
                    k=k, self_loops=self_loops)


def gft_affinity(
    x: torch.Tensor,
    tau: float = DEFAULT_TAU_GFT,
    k: int = DEFAULT_K,
    self_loops: bool = True,
) -> torch.Tensor:
    r"""Row-normalised GFT affinity: every node sees every node, one temperature.

    Reference:
        Li et al., ECCV 2022, supplementary material §3, eqs. 8-10 (the ablation baseline).

    :math:`S_{ij} = \exp(\cos(x_i, x_j) / \tau)` over all ``j``, then the same top-k rule and row
    normalisation as :func:`affinity` (keep entries strictly greater than the row's (k+1)-th
    largest; ``k`` counts self unless ``self_loops=False``, which removes the diagonal before the
    top-k). ``tau`` defaults to 0.4 (:math:`\tau_{hom}`); the supplementary gives no value.
    This is :func:`graph_affinity` with ``graph="gft"``, the graph a GFT model trains and tests.

    Args:
        x (torch.Tensor): (..., N, d) node features, floating point.
        tau (float): temperature, > 0.
        k (int): entries kept per row, >= 1.
        self_loops (bool): whether a node may be its own neighbour.

    Returns:
        torch.Tensor: (..., N, N) affinity, dtype and device of ``x``.
    """
    _check_features(x)
    _check_k(k)
    _check_tau("tau", tau)
    nodes = torch.zeros(x.shape[-2], dtype=torch.bool, device=x.device)
    return graph_affinity(x, nodes, "gft", tau_hom=tau, tau_het=tau, k=k, self_loops=self_loops)


def gft_transfer(
    x: torch.Tensor,
    tau: float = DEFAULT_TAU_GFT,
    k: int = DEFAULT_K,
) -> torch.Tensor:
    """GFT feature transfer ``F = A X`` (supplementary eq. 8).

    Args:
        x (torch.Tensor): (..., N, d) node features.
        tau, k: as in :func:`gft_affinity` (self-loops kept).

    Returns:
        torch.Tensor: (..., N, d) transferred features, dtype and device of ``x``.
    """
    return gft_affinity(x, tau=tau, k=k) @ x


def neighbour_mask(is_query: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
    """Which columns each row of the H2FT graph may use (UBS).

    Column ``j`` is allowed for row ``i`` when ``j`` is a gallery node or ``j == i``; with
    ``self_loops=False`` the diagonal is removed.

    Args:
        is_query (torch.Tensor): (N,) bool, True for query nodes.
        self_loops (bool): whether the diagonal is allowed.

    Returns:
        torch.Tensor: (N, N) bool, on the device of ``is_query``.
    """
    if is_query.dim() != 1 or is_query.dtype != torch.bool:
        raise ValueError(
            "is_query must be a bool (N,) tensor, "
            f"got shape {tuple(is_query.shape)} and {is_query.dtype}"
        )
    n = is_query.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=is_query.device)
    allowed = ~is_query[None, :] | eye
    return allowed & ~eye if not self_loops else allowed


def training_query_mask(is_visible: torch.Tensor, mode: str) -> torch.Tensor:
    """Which nodes of a training batch play the query in a UBS mode.

    Args:
        is_visible (torch.Tensor): (N,) bool, True for visible, False for infrared samples.
        mode (str): ``"r2i"`` (visible samples are the queries, infrared the gallery) or
            ``"i2r"`` (infrared samples are the queries).

    Returns:
        torch.Tensor: (N,) bool ``is_query``.
    """
    if mode not in BRANCHES:
        raise ValueError(f"Unknown training mode {mode!r}; known modes: {list(BRANCHES)}")
    if is_visible.dim() != 1 or is_visible.dtype != torch.bool:
        raise ValueError(
            "is_visible must be a bool (N,) tensor, "
            f"got shape {tuple(is_visible.shape)} and {is_visible.dtype}"
        )
    return is_visible.clone() if mode == R2I else ~is_visible


def _cosine_similarity(x: torch.Tensor) -> torch.Tensor:
    """(..., N, d) -> (..., N, N) cosine similarities.

    The Gram matrix is divided by the norms afterwards (rather than normalising first), so
    identical features give bitwise-identical columns whenever the dot products are exact:
    what makes exact ties reproducible.
    """
    norms = x.norm(dim=-1).clamp_min(NORM_FLOOR)
    gram = x @ x.transpose(-1, -2)
    return gram / norms[..., :, None] / norms[..., None, :]


def _masked_topk_row_normalise(logits: torch.Tensor, allowed: torch.Tensor, k: int) -> torch.Tensor:
    """``D^-1 S'`` from (..., N, N) logits ``s / tau`` and an (N, N) bool mask of allowed entries.

    ``S = exp(logits)`` on allowed entries, 0 elsewhere; per row keep the entries strictly greater
    than the (k+1)-th largest; rows without any entry stay 0.
    """
    logits = logits.masked_fill(~allowed, -math.inf)
    # Shifting a row by a constant leaves D^-1 S' unchanged; detached, it adds no gradient terms.
    row_max = logits.detach().amax(dim=-1, keepdim=True)
    row_max = row_max.masked_fill(~torch.isfinite(row_max), 0.0)
    weights = torch.exp(logits - row_max)  # (0, 1] where allowed, 0 elsewhere
    n = logits.shape[-1]
    if k + 1 <= n:
        # Disallowed entries are 0, so a row with <= k allowed entries has a 0 threshold and
        # keeps all of them.
        threshold = weights.detach().topk(k + 1, dim=-1).values[..., -1:]
        weights = weights.masked_fill(weights <= threshold, 0.0)
    row_sum = weights.sum(dim=-1, keepdim=True)
    return weights / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum))


def _check_features(x: torch.Tensor) -> None:
    if x.dim() < 2 or not x.is_floating_point() or x.shape[-2] == 0:
        raise ValueError(
            "x must be a floating (..., N, d) tensor with N >= 1, "
            f"got shape {tuple(x.shape)} and {x.dtype}"
        )


def _check_is_query(is_query: torch.Tensor, n: int) -> None:
    if is_query.dim() != 1 or is_query.shape[0] != n or is_query.dtype != torch.bool:
        raise ValueError(
            f"is_query must be a bool ({n},) tensor (one flag per node), "
            f"got shape {tuple(is_query.shape)} and {is_query.dtype}"
        )


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def _check_tau(name: str, tau: float) -> None:
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0 < tau < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {tau!r}")


def transfer_gallery_queries(
    gallery: torch.Tensor,
    queries: torch.Tensor,
    tau_hom: float = DEFAULT_TAU_HOM,
    tau_het: float = DEFAULT_TAU_HET,
    k: int = DEFAULT_K,
    gallery_keys: torch.Tensor | None = None,
    query_keys: torch.Tensor | None = None,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time H2FT on the ``[gallery ; queries]`` graph, without its (Q, Q) block.

    Equal to ``transfer(cat([gallery, queries]), is_query)`` split back into its two parts (each
    query is independently "one query against the gallery": it sees the gallery and itself), but
    the query rows are built ``chunk_size`` at a time from their (c, G) similarities and their
    self-similarity, so memory is O(G^2 + chunk_size * G) instead of O((G + Q)^2).

    Args:
        gallery (torch.Tensor): (G, d) gallery features (transferred on the homogeneous graph).
        queries (torch.Tensor): (Q, d) query features.
        gallery_keys, query_keys (torch.Tensor, optional): (G, d'), (Q, d') features the
            similarities are computed from (a learned projection v(x)); default the features.
        chunk_size (int): queries per block.

    Returns:
        tuple: (G, d) transferred gallery and (Q, d) transferred queries.
    """
    gallery_keys, query_keys = _test_time_keys(gallery, queries, gallery_keys, query_keys, k,
                                               tau_hom, tau_het)
    no_query = torch.zeros(gallery.shape[0], dtype=torch.bool, device=gallery.device)
    gallery_out = affinity(gallery_keys, no_query, tau_hom=tau_hom, k=k) @ gallery
    g_unit = unit_rows(gallery_keys)
    outs = []
    for start in range(0, queries.shape[0], chunk_size):
        q, q_keys = queries[start:start + chunk_size], query_keys[start:start + chunk_size]
        q_unit = unit_rows(q_keys)
        logits = torch.cat([q_unit @ g_unit.T, _self_similarity(q_keys)], dim=1) / float(tau_het)
        allowed = torch.ones_like(logits, dtype=torch.bool)
        weights = _masked_topk_row_normalise(logits, allowed, k)  # (c, G + 1)
        outs.append(weights[:, :-1] @ gallery + weights[:, -1:] * q)
    query_out = torch.cat(outs) if outs else queries[:0]
    return gallery_out, query_out


# ---- TEMP until engineer C's module lands: the graph settings of the test-time transfer ----
@dataclass(frozen=True)
class GraphSettings:
    """The graph kind, temperatures and k of a CIFT graph (MODEL.CIFT.*)."""

    graph: str = "h2ft"
    tau_hom: float = DEFAULT_TAU_HOM
    tau_het: float = DEFAULT_TAU_HET
    k: int = DEFAULT_K

    @classmethod
    def from_config(cls, cfg) -> GraphSettings:
        """MODEL.CIFT.GRAPH/TAU_HOM/TAU_HET/TOPK (checked at config load)."""
        c = cfg.MODEL.CIFT
        return cls(graph=c.GRAPH, tau_hom=c.TAU_HOM, tau_het=c.TAU_HET, k=c.TOPK)
# ---- end TEMP ----


def _sparse_rows(sims: torch.Tensor, tau: float, k: int) -> torch.Tensor:
    """Weights of rows given their candidate similarities (n, m), descending per row, that
    contain every entry the dense rule could keep: keep the entries strictly greater than the
    (k+1)-th largest (all of them when m <= k), exp(s / tau), normalised."""
    logits = sims / float(tau)
    weights = torch.exp(logits - logits[:, :1])
    if sims.shape[1] > k:
        weights = weights.masked_fill(sims <= sims[:, k:k + 1], 0.0)
    return weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-30)


def sparse_transfer_gallery_queries(
    gallery: torch.Tensor,
    queries: torch.Tensor,
    tau_hom: float = DEFAULT_TAU_HOM,
    tau_het: float = DEFAULT_TAU_HET,
    k: int = DEFAULT_K,
    gallery_keys: torch.Tensor | None = None,
    query_keys: torch.Tensor | None = None,
    block: int = 1024,
    backend: str = "torch",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`transfer_gallery_queries` from top-(k+1) neighbour lists: the same result (ties
    aside) in O((G + Q) * (k + d)) memory plus one (block, G) similarity block, never the
    (G + Q)^2 or G^2 matrix.

    Gallery rows: the k+1 nearest gallery nodes (self among them) give the homogeneous row.
    Query rows: the k+1 nearest gallery nodes plus the query itself are the candidates of the
    heterogeneous row. Arguments as :func:`transfer_gallery_queries`; ``backend`` "torch"
    (blocked matmul + topk, the gallery searched against itself tile by tile, see
    :func:`self_nearest_neighbours`, ``block`` rows and columns at a time) or "faiss"
    (IndexFlatIP).
    """
    gallery_keys, query_keys = _test_time_keys(gallery, queries, gallery_keys, query_keys, k,
                                               tau_hom, tau_het)
    g_sims, g_idx = self_nearest_neighbours(gallery_keys, k + 1, block, backend)
    gallery_out = _weighted_rows(_sparse_rows(g_sims, tau_hom, k), g_idx, gallery)
    q_sims, q_idx = nearest_neighbours(query_keys, gallery_keys, k + 1, block, backend)
    sims = torch.cat([q_sims, _self_similarity(query_keys)], dim=1)
    order = sims.argsort(dim=1, descending=True, stable=True)
    weights = _sparse_rows(sims.gather(1, order), tau_het, k)
    weights = torch.zeros_like(weights).scatter(1, order, weights)  # back to [gallery..., self]
    query_out = _weighted_rows(weights[:, :-1], q_idx, gallery) + weights[:, -1:] * queries
    return gallery_out, query_out


def _test_time_keys(gallery, queries, gallery_keys, query_keys, k, tau_hom, tau_het):
    """Checked test-time inputs; the similarity keys default to the features themselves."""
    gallery_keys = gallery if gallery_keys is None else gallery_keys
    query_keys = queries if query_keys is None else query_keys
    for tensor in (gallery, queries, gallery_keys, query_keys):
        _check_features(tensor)
    _check_k(k)
    _check_tau("tau_hom", tau_hom)
    _check_tau("tau_het", tau_het)
    return gallery_keys, query_keys


def _self_similarity(keys: torch.Tensor) -> torch.Tensor:
    """cos(x, x) of each row as the graph computes it (1 up to rounding): (n, d) -> (n, 1)."""
    return (keys * keys).sum(dim=1, keepdim=True) / keys.norm(dim=1, keepdim=True).clamp_min(
        NORM_FLOOR).pow(2)


def _weighted_rows(weights: torch.Tensor, idx: torch.Tensor, values: torch.Tensor
                   ) -> torch.Tensor:
    """sum_j weights[:, j] * values[idx[:, j]]: (n, m), (n, m), (V, d) -> (n, d), as one sparse
    matmul, so that no (n, m, d) tensor is formed."""
    return _neighbour_matrix(weights, idx, values.shape[0]) @ values


def _neighbour_matrix(weights: torch.Tensor, idx: torch.Tensor, num_cols: int) -> torch.Tensor:
    """The (n, num_cols) sparse CSR matrix with ``weights[i, j]`` at column ``idx[i, j]``; each
    row's indices must be distinct (neighbour lists are)."""
    n, m = weights.shape
    idx, order = idx.sort(dim=1)  # CSR keeps each row's column indices sorted
    crow = torch.arange(0, n * m + 1, m, device=weights.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, idx.reshape(-1), weights.gather(1, order).reshape(-1),
                                       size=(n, num_cols), check_invariants=False)

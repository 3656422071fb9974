"""Exact cosine nearest-neighbour search (blocked torch matmul + topk, or a faiss flat index),
shared by the test-time transfer, the top-R evaluation, the export and the analysis.

No function here holds a (Q, B) similarity matrix beyond one block of rows.
"""
from __future__ import annotations

import math

import torch

__all__ = ["NORM_FLOOR", "SEARCH_BACKENDS", "nearest_neighbours", "self_nearest_neighbours",
           "unit_rows"]

# Searches of nearest_neighbours (TEST.SEARCH.BACKEND chooses one).
SEARCH_BACKENDS = ("torch", "faiss")

# Floor on feature norms before dividing, as torch.nn.functional.normalize does.
NORM_FLOOR = 1e-12


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """(n, d) rows scaled to unit L2 norm (norms floored as torch's normalize does)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(NORM_FLOOR)


def nearest_neighbours(queries: torch.Tensor, base: torch.Tensor, n: int, block: int = 4096,
                       backend: str = "torch", normalise: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` largest cosine similarities of each query row among ``base`` rows (inner
    products of the rows as given with ``normalise=False``).

    Blocked over queries (``block`` rows at a time) with torch matmul + topk, or a faiss
    ``IndexFlatIP`` (GPU when faiss has one), so no (Q, B) matrix is held beyond one block.

    Args:
        queries (torch.Tensor): (Q, d) features. base (torch.Tensor): (B, d) features.
        n (int): neighbours per row (cut to B).
        block (int): query rows per block (torch backend).
        backend (str): one of :data:`SEARCH_BACKENDS`.
        normalise (bool): scale the rows to unit length first (cosine similarity).
    Returns:
        tuple: (Q, n) similarities, descending, and (Q, n) int64 indices into ``base``.
    """
    n = min(n, base.shape[0])
    q_unit, b_unit = (unit_rows(queries), unit_rows(base)) if normalise else (queries, base)
    if backend == "faiss":
        return _faiss_search(q_unit, b_unit, n)
    if backend != "torch":
        raise ValueError(f"unknown search backend {backend!r}; known: {', '.join(SEARCH_BACKENDS)}")
    sims, idx = [], []
    for start in range(0, q_unit.shape[0], block):
        s, i = (q_unit[start:start + block] @ b_unit.T).topk(n, dim=1)
        sims.append(s)
        idx.append(i)
    if not sims:
        return q_unit.new_zeros(0, n), torch.zeros(0, n, dtype=torch.long, device=q_unit.device)
    return torch.cat(sims), torch.cat(idx)


def self_nearest_neighbours(x: torch.Tensor, n: int, block: int = 1024,
                            backend: str = "torch") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` largest cosine similarities of each row of ``x`` among all rows of ``x``
    (itself included): ``nearest_neighbours(x, x, n)`` at about half the multiply-adds.

    The torch backend computes only the (block, block) tiles on and above the diagonal of the
    (N, N) similarity matrix: an off-diagonal tile gives candidates to its rows and, read by
    columns, to the rows of its mirror tile, which is never computed. Each tile's top-n merges
    into running (N, n) lists, so memory is O(N * n + block^2). The faiss backend searches ``x``
    against itself.

    Args:
        x (torch.Tensor): (N, d) features.
        n (int): neighbours per row (cut to N).
        block (int): tile side.
        backend (str): "torch" or "faiss".
    Returns:
        tuple: (N, n) similarities, descending, and (N, n) int64 indices into ``x``.
    """
    if backend != "torch":
        return nearest_neighbours(x, x, n, block, backend)
    num, n = x.shape[0], min(n, x.shape[0])
    unit = unit_rows(x)
    sims = unit.new_full((num, n), -math.inf)
    idx = torch.zeros(num, n, dtype=torch.long, device=x.device)
    for i in range(0, num, block):
        for j in range(i, num, block):
            tile = unit[i:i + block] @ unit[j:j + block].T
            _merge_top(sims, idx, i, tile, j)
            if j != i:
                _merge_top(sims, idx, j, tile.T, i)
    return sims, idx


def _merge_top(sims: torch.Tensor, idx: torch.Tensor, row: int, tile: torch.Tensor,
               col: int) -> None:
    """Merge the (r, c) tile of similarities of rows ``row:row+r`` to columns ``col:col+c``
    into the running descending top-n lists ``sims``, ``idx`` (N, n), in place."""
    rows = slice(row, row + tile.shape[0])
    tile_sims, tile_idx = tile.topk(min(sims.shape[1], tile.shape[1]), dim=1)
    merged = torch.cat([sims[rows], tile_sims], dim=1)
    merged_idx = torch.cat([idx[rows], tile_idx + col], dim=1)
    sims[rows], order = merged.topk(sims.shape[1], dim=1)
    idx[rows] = merged_idx.gather(1, order)


def _faiss_search(q_unit: torch.Tensor, b_unit: torch.Tensor, n: int):
    import faiss

    d = b_unit.shape[1]
    index = faiss.IndexFlatIP(d)
    if hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(b_unit.detach().float().cpu().contiguous().numpy())
    sims, idx = index.search(q_unit.detach().float().cpu().contiguous().numpy(), n)
    return (torch.from_numpy(sims).to(q_unit.device, q_unit.dtype),
            torch.from_numpy(idx).to(q_unit.device))

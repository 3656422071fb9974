"""Top-R retrieval for the protocols (TEST.RETRIEVAL): each query's nearest gallery images from
features, by blocked torch matmul + topk or a faiss index, without a (Q, G) distance matrix."""
from __future__ import annotations

import numbers

import numpy as np
import torch

from ..errors import CiftInputError
from ..neighbours import nearest_neighbours
from ..search_settings import search_backend
from .protocols import Search


def check_retrieval(cfg) -> int:
    """TEST.RETRIEVAL checked against the rest of the config, the search backend
    (TEST.SEARCH.BACKEND, see `cift.search_settings`), and fastreid's TEST.METRIC, which must be
    cosine (the evaluator and the test-time transfer rank by cosine similarity; fastreid's other
    values are not implemented); returns TOP_R (0 = off)."""
    if cfg.TEST.METRIC != "cosine":
        raise CiftInputError(f"TEST.METRIC {cfg.TEST.METRIC!r}: only 'cosine' is supported "
                             "(the VI-ReID evaluator ranks by cosine similarity)")
    r = cfg.TEST.RETRIEVAL
    search_backend(cfg)
    if isinstance(r.TOP_R, bool) or not isinstance(r.TOP_R, numbers.Integral) or r.TOP_R < 0:
        raise CiftInputError(f"TEST.RETRIEVAL.TOP_R {r.TOP_R!r}: expected an int >= 0 "
                             "(0 ranks the whole gallery)")
    if r.TOP_R and cfg.TEST.RERANK.ENABLED:
        raise CiftInputError("TEST.RETRIEVAL.TOP_R > 0 with TEST.RERANK.ENABLED: re-ranking "
                             "needs the whole distance matrix; set TOP_R 0 or disable RERANK")
    return int(r.TOP_R)


def feature_search(queries: np.ndarray, gallery: np.ndarray, backend: str = "torch",
                   device: str = "cpu") -> Search:
    """The protocols' search (``protocols.Search``) over the inner products of the features as
    given: the ranking of −q·gᵀ, as the full rankings (`cift.evaluation.distances`).

    Args:
        queries: (Q, d) query features. gallery: (G, d) gallery features.
        backend: "torch" (blocked matmul + topk on ``device``) or "faiss" (IndexFlatIP, on the
            GPU when faiss has one).
        device: where the torch backend computes ("cpu", "cuda", ...).
    Returns:
        search(rows, columns, n) -> (len(rows), min(n, candidates)) int64 gallery indices
        (into ``columns`` when given), most similar first.
    """
    device = device if backend == "torch" else "cpu"
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(device)
    g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32)).to(device)

    subset: dict = {}  # the last candidate subset: the protocols reuse one per query group

    def candidates(columns: np.ndarray | None) -> torch.Tensor:
        if columns is None:
            return g
        columns = np.asarray(columns)
        if "columns" not in subset or not np.array_equal(subset["columns"], columns):
            subset.update(columns=columns, base=g[torch.from_numpy(columns).to(device)])
        return subset["base"]

    def search(rows: np.ndarray, columns: np.ndarray | None, n: int) -> np.ndarray:
        base = candidates(columns)
        rows_t = torch.from_numpy(np.asarray(rows)).to(device)
        _, idx = nearest_neighbours(q[rows_t], base, n, backend=backend, normalise=False)
        return idx.cpu().numpy()

    return search

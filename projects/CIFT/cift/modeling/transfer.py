"""Test-time transfer of a CIFT graph on the [gallery ; queries] graph, in one call.

# TEMP until C's module lands: an adapter with the agreed signature over today's
# `transfer_gallery_queries` / `sparse_transfer_gallery_queries` (the lead replaces it at merge).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .graph import (
    GraphSettings,
    graph_affinity,
    sparse_transfer_gallery_queries,
    transfer_gallery_queries,
)

__all__ = ["TRANSFER_FORMS", "test_time_transfer"]

TRANSFER_FORMS = ("dense", "chunked", "sparse")


@torch.no_grad()
def test_time_transfer(gallery: torch.Tensor, queries: torch.Tensor, settings: GraphSettings,
                       form: str = "chunked", backend: str = "torch",
                       gallery_keys: torch.Tensor | None = None,
                       query_keys: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(G, d) gallery and (Q, d) queries, L2-normalised here, transferred on their test graph
    and L2-normalised again: H2FT in one of TRANSFER_FORMS, GFT as one dense graph."""
    if form not in TRANSFER_FORMS:
        raise ValueError(f"unknown transfer form {form!r}; known: {', '.join(TRANSFER_FORMS)}")
    g, q = F.normalize(gallery, dim=1), F.normalize(queries, dim=1)
    kwargs = dict(tau_hom=settings.tau_hom, tau_het=settings.tau_het, k=settings.k)
    if settings.graph == "gft" or form == "dense":
        x = torch.cat([g, q])
        keys = x if gallery_keys is None else torch.cat([gallery_keys, query_keys])
        is_query = torch.arange(x.shape[0], device=x.device) >= g.shape[0]
        y = graph_affinity(keys, is_query, settings.graph, **kwargs) @ x
        g_out, q_out = y[:g.shape[0]], y[g.shape[0]:]
    elif form == "sparse":
        g_out, q_out = sparse_transfer_gallery_queries(g, q, backend=backend, **kwargs,
                                                       gallery_keys=gallery_keys,
                                                       query_keys=query_keys)
    else:
        g_out, q_out = transfer_gallery_queries(g, q, **kwargs, gallery_keys=gallery_keys,
                                                query_keys=query_keys)
    return F.normalize(g_out, dim=1), F.normalize(q_out, dim=1)

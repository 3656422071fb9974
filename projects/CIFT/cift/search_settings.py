"""The test-time search and transfer settings (TEST.SEARCH.*, TEST.TRANSFER.*), read in one place
for the model, the evaluator and the tools; their values are checked when the config is loaded
(:mod:`cift.config`).

TEST.SEARCH.BACKEND chooses the one neighbour search (:mod:`cift.neighbours`) that serves both
the sparse test-time transfer and the top-R retrieval.
"""
from __future__ import annotations

from dataclasses import dataclass

from .neighbours import SEARCH_BACKENDS

__all__ = ["SEARCH_KEY", "TRANSFER_MODES", "TransferSettings", "search_backend",
           "transfer_settings"]

SEARCH_KEY = "TEST.SEARCH.BACKEND"
# TEST.TRANSFER.MODE: "dense" (the authors' way), "sparse" (top-(k+1) lists), "auto" (sparse
# above SPARSE_ABOVE nodes).
TRANSFER_MODES = ("auto", "dense", "sparse")


@dataclass(frozen=True)
class TransferSettings:
    """How a CIFT model builds its test-time H2FT graph: densely or from neighbour lists."""

    mode: str = "auto"
    sparse_above: int = 0  # TEST.TRANSFER.SPARSE_ABOVE's default
    backend: str = SEARCH_BACKENDS[0]

    def sparse(self, num_nodes: int) -> bool:
        """Whether a [gallery ; queries] graph of `num_nodes` nodes is built from neighbour
        lists: always for "sparse", above `sparse_above` nodes for "auto", never for "dense"."""
        return self.mode == "sparse" or (self.mode == "auto" and num_nodes > self.sparse_above)

    def form(self, num_nodes: int) -> str:
        """The form of `cift.modeling.transfer.test_time_transfer` for a graph of `num_nodes`
        nodes: "sparse" (neighbour lists, :meth:`sparse`) or "chunked" (dense)."""
        return "sparse" if self.sparse(num_nodes) else "chunked"


def search_backend(cfg) -> str:
    """The neighbour search of the test-time transfer and the top-R retrieval
    (TEST.SEARCH.BACKEND)."""
    return cfg.TEST.SEARCH.BACKEND


def transfer_settings(cfg) -> TransferSettings:
    """TEST.TRANSFER.MODE, TEST.TRANSFER.SPARSE_ABOVE and the search backend."""
    t = cfg.TEST.TRANSFER
    return TransferSettings(mode=t.MODE, sparse_above=t.SPARSE_ABOVE, backend=search_backend(cfg))

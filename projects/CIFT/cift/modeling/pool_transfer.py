"""The test-time transfer of a protocol's trials that draw from one pool: the neighbour search
done once for all of them.

Each trial of SYSU-MM01 or LLCM transfers its own [gallery ; queries] graph, whose gallery is a
draw from one pool and whose queries are (nearly) always the same. The neighbour-list form
searches, per trial, the gallery against itself and the queries against the gallery: products
of keys that are slices of the queries x pool and pool x pool products. :class:`PoolTransfer`
computes those two once per branch (:class:`cift.modeling.transfer.PoolNeighbours`) and reads
each trial's lists from their slices; the transfer itself is the sparse form's
(:func:`cift.modeling.transfer.transfer_from_lists`). A single trial, a dense or GFT graph, the
faiss search, or a pool whose products would exceed :data:`MAX_POOL_ENTRIES` go through the
per-trial transfer unchanged. It serves the evaluator (`cift.evaluation.vi_evaluator`, which
takes any object with its ``over_trials``) and tools/evaluate_features.py alike.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..evaluation.distances import Trial, negative_inner_product, trial_union
from ..neighbours import unit_rows
from ..search_settings import TransferSettings
from .graph import GraphSettings
from .transfer import (
    PoolNeighbours,
    list_weights,
    test_time_transfer,
    transfer_from_lists,
    transferred_cosines,
)

__all__ = ["MAX_POOL_ENTRIES", "PoolTransfer", "numpy_pool_transfer"]

# Largest number of similarities held for one branch's trials (PoolNeighbours.entries), the
# bound of the raw features' shared product (cift.evaluation.distances.MAX_UNION_ENTRIES).
MAX_POOL_ENTRIES = 2**27

# (gallery (G, d), queries (Q, d), branch) -> transferred (gallery, queries), L2-normalised,
# float32 (cift.evaluation.vi_evaluator.GraphTransfer).
GraphTransfer = Callable[[np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray]]
# branch -> the keys v(x) of its graph: (n, d) features -> (n, d') keys; None: the normalised
# features themselves
Keys = Callable[[str], Callable[[torch.Tensor], torch.Tensor] | None]


@dataclass(frozen=True)
class PoolTransfer:
    """A model's test-time transfer: one trial's (``trial``, a :data:`GraphTransfer`) or all
    trials of a branch from one neighbour search (:meth:`over_trials`).

    Attributes:
        trial: one trial's transfer (the per-trial path, and the fallback).
        settings: the model's graph. how: TEST.TRANSFER (form by graph size, search backend).
        keys: branch -> its key map (None: the normalised features).
        device: where the keys and similarities are computed.
    """

    trial: GraphTransfer
    settings: GraphSettings
    how: TransferSettings
    keys: Keys
    device: str | torch.device = "cpu"

    def __call__(self, gallery: np.ndarray, queries: np.ndarray, branch: str
                 ) -> tuple[np.ndarray, np.ndarray]:
        return self.trial(gallery, queries, branch)

    def shares(self, trials: Sequence[Trial]) -> bool:
        """Whether the trials go through one neighbour search (:meth:`shared_union`)."""
        return self.shared_union(trials) is not None

    def shared_union(self, trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray] | None:
        """The trials' sorted distinct query and pool indices when they go through one
        neighbour search: several trials, each an H2FT graph the torch search builds from
        neighbour lists, and products that fit; else None."""
        if len(trials) < 2 or self.settings.graph == "gft" or self.how.backend != "torch":
            return None
        if not all(self.how.sparse(q.size + g.size) for q, g in trials):
            return None
        queries, pool = trial_union(trials)
        fits = PoolNeighbours.entries(queries.size, pool.size) <= MAX_POOL_ENTRIES
        return (queries, pool) if fits else None

    @torch.no_grad()
    def over_trials(self, x: np.ndarray, trials: Sequence[Trial], branch: str
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x[g] transferred (G, d), x[q] transferred (Q, d)), float32, of each (q, g) trial of
        the (N, d) features x, in order (trials' gallery items distinct)."""
        union = self.shared_union(trials)
        if union is None:
            for q, g in trials:
                yield self.trial(x[g], x[q], branch)
            return
        search = _SharedSearch(self, x, union, branch)
        for q, g in search.index(trials):
            g_out, q_out = transfer_from_lists(search.unit[g], search.unit[q], search.keys[q],
                                               self.settings, *search.lists(q, g))
            yield g_out.cpu().numpy(), q_out.cpu().numpy()

    @torch.no_grad()
    def distances_over_trials(self, x: np.ndarray, trials: Sequence[Trial], branch: str
                              ) -> Iterator[np.ndarray]:
        """−q'·g'ᵀ (Q, G), float32, of each (q, g) trial's transferred features, in order: the
        public scripts' distance of :meth:`over_trials`' outputs. Trials that share one
        neighbour search get it from the products of the pool's unit features
        (:func:`cift.modeling.transfer.transferred_cosines`, equal up to rounding) instead of
        a (Q, d) x (d, G) product per trial."""
        union = self.shared_union(trials)
        if union is None:
            for g_out, q_out in self.over_trials(x, trials, branch):
                yield negative_inner_product(q_out, g_out)
            return
        search = _SharedSearch(self, x, union, branch)
        # the unit features' similarities: the search's own unless its keys are projected
        keyed = search.keys is not search.unit
        products = PoolNeighbours(search.unit, search.neighbours.queries,
                                  search.neighbours.pool) if keyed else search.neighbours
        query_keys = query_self = last_q = None
        for q, g in search.index(trials):
            if last_q is None or not torch.equal(q, last_q):  # trials mostly share queries
                last_q, query_keys, query_self = q, search.keys[q], search.unit_self[q]
            gallery_gallery, query_gallery = products.trial_products(q, g)
            lists = search.neighbours.lists(
                q, g, search.n, None if keyed else (gallery_gallery, query_gallery))
            g_weights, q_weights, self_weights = list_weights(query_keys, self.settings, *lists)
            cosines = transferred_cosines(g_weights, lists[0][1], q_weights, lists[1][1],
                                          self_weights, gallery_gallery, query_gallery,
                                          query_self)
            yield (-cosines).cpu().numpy()


def numpy_pool_transfer(settings: GraphSettings, how: TransferSettings) -> PoolTransfer:
    """The test-time transfer of features without a model (the graph compares the normalised
    features themselves) on numpy arrays, in float32: one trial in the form ``how`` gives its
    graph size, a protocol's trials from one neighbour search (:class:`PoolTransfer`)."""
    def transfer(gallery: np.ndarray, queries: np.ndarray, branch: str
                 ) -> tuple[np.ndarray, np.ndarray]:
        g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32))
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        g_out, q_out = test_time_transfer(g, q, settings, form=how.form(g.shape[0] + q.shape[0]),
                                          backend=how.backend)
        return g_out.numpy(), q_out.numpy()
    return PoolTransfer(transfer, settings, how, lambda branch: None)


class _SharedSearch:
    """The state :class:`PoolTransfer` shares over one branch's trials: the unit features and
    their squared norms, the keys and the pool's :class:`PoolNeighbours` of the keys."""

    def __init__(self, transfer: PoolTransfer, x: np.ndarray,
                 union: tuple[np.ndarray, np.ndarray], branch: str):
        self.device, self.n = transfer.device, transfer.settings.k + 1
        feats = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        self.unit = unit_rows(feats)
        self.unit_self = (self.unit * self.unit).sum(dim=1)  # (N,) u·u
        key_map = transfer.keys(branch)
        self.keys = self.unit if key_map is None else key_map(feats)
        self.neighbours = PoolNeighbours(self.keys, *(self._tensor(i) for i in union))

    def _tensor(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(indices).long().to(self.device)

    def index(self, trials: Sequence[Trial]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The trials' (q, g) as int64 tensors on the device."""
        return [(self._tensor(q), self._tensor(g)) for q, g in trials]

    def lists(self, q: torch.Tensor, g: torch.Tensor):
        """One trial's neighbour lists (:meth:`PoolNeighbours.lists`)."""
        return self.neighbours.lists(q, g, self.n)


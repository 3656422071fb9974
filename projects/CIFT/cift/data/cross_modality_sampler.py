"""Cross-modality identity sampler: P identities, K visible then K infrared images each.

Every per-rank batch of ``batch_size = 2·P·K`` indices is laid out ``[P×K visible ; P×K infrared]``
with the same identity order in both halves (DESIGN.md §2)::

    position            p*K ... p*K+K-1         P*K + p*K ... P*K + p*K+K-1
    content             K visible of id p        K infrared of id p

The graph masks (H2FT) and the HCC loss rely on this order.

Epoch (DESIGN.md §3, "Recipe"): like the authors' sampler, an epoch is one pass in which every
identity is consumed in chunks of K images per modality. Identity ``i`` with ``n_ir(i)`` infrared
images owns ``c_i = ceil(n_ir(i) / K)`` chunks: its shuffled infrared images split into chunks of K,
the last one topped up with other infrared images of ``i`` (or drawn with replacement when
``n_ir(i) < K``); its visible chunks are drawn the same way from its visible images, reshuffling
after each pass, as many as needed. Batches draw P distinct identities that still own chunks.

The authors stop when fewer than P identities have chunks left, which makes the epoch length
random. Here the length is fixed so that a schedule in epochs is well defined::

    B = max { b >= 0 : sum_i min(c_i, b) >= P * b }      # batches one epoch can hold

(``B = floor(sum_i c_i / P)`` whenever no identity owns more than that many chunks). The identities
of each batch are drawn uniformly among those with chunks left, except that, near the end of the
epoch, identities that would otherwise be left with more chunks than remaining batches are drawn
first; this keeps the remaining chunks enough for the remaining batches, so an epoch always has
exactly its planned number of batches (identity ``i`` then appears in at most ``min(c_i, B)``
batches, each time with a new chunk).

Ranks: every rank builds the same global stream (same seed, ``comm.shared_random_seed()`` by
default); one global epoch holds ``world_size · floor(B / world_size)`` per-rank batches and rank
``r`` takes global batches ``r, r + world_size, ...`` (whole blocks, disjoint across ranks), so
:attr:`CrossModalityIdentitySampler.batches_per_epoch` ``= floor(B / world_size)`` per rank.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch.utils.data
from fastreid.utils import comm

__all__ = ["CrossModalityIdentitySampler"]

logger = logging.getLogger(__name__)


def _num_batches(chunks: np.ndarray, num_pids: int) -> int:
    """Largest ``b`` with ``sum_i min(chunks_i, b) >= num_pids * b`` (0 if none is positive).

    ``f(b) = sum_i min(chunks_i, b) - num_pids * b`` is concave with ``f(0) = 0``, so ``f >= 0``
    exactly on ``[0, B]``; ``B <= sum(chunks) // num_pids`` bounds the search.
    """
    lo, hi = 0, int(chunks.sum()) // num_pids
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(chunks, mid).sum()) >= num_pids * mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _chunks(indices: np.ndarray, num_chunks: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``num_chunks`` chunks of ``k`` indices drawn from ``indices`` (shape ``(num_chunks, k)``).

    With ``len(indices) >= k`` a chunk never repeats an index: passes over a fresh permutation are
    split into chunks of ``k``, a short last chunk being topped up with other indices of the pass.
    With fewer than ``k`` indices each chunk holds all of them plus draws with replacement.
    """
    n = len(indices)
    if n < k:
        fill = rng.choice(indices, size=(num_chunks, k - n), replace=True)
        chunks = np.concatenate([np.broadcast_to(indices, (num_chunks, n)), fill], axis=1)
        return rng.permuted(chunks, axis=1)
    out: list[np.ndarray] = []
    num_full = n // k
    while len(out) < num_chunks:
        perm = rng.permutation(indices)
        out.extend(perm[: num_full * k].reshape(num_full, k))
        tail = perm[num_full * k :]
        if len(tail):
            top_up = rng.choice(perm[: num_full * k], size=k - len(tail), replace=False)
            out.append(rng.permutation(np.concatenate([tail, top_up])))
    return np.stack(out[:num_chunks])


class CrossModalityIdentitySampler(torch.utils.data.Sampler[int]):
    """Infinite sampler of ``[P×K visible ; P×K infrared]`` batches for VI-ReID training.

    See the module docstring for the layout, the epoch and the sharding across ranks. Use it with
    ``BatchSampler(sampler, batch_size, drop_last=True)`` (fastreid's
    ``build_reid_train_loader(..., sampler=...)`` does that): each per-rank batch then is one
    complete block.

    Args:
        pids: identity label of each index of the training set.
        is_visible: modality of each index of the training set (True: visible, False: infrared).
        batch_size: per-rank mini-batch size ``2·P·K``.
        num_instances: K, images per identity and per modality in a batch.
        seed: seed of the shared stream; ``comm.shared_random_seed()`` when None (every rank must
            then construct the sampler, as with fastreid's samplers).
        rank: this process's rank; ``comm.get_rank()`` when None.
        world_size: number of ranks; ``comm.get_world_size()`` when None.
    """

    def __init__(
        self,
        pids: Sequence[int],
        is_visible: Sequence[bool],
        batch_size: int,
        num_instances: int,
        seed: int | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if len(pids) != len(is_visible):
            raise ValueError(
                f"pids and is_visible must have the same length, got {len(pids)} and "
                f"{len(is_visible)}"
            )
        if num_instances < 1:
            raise ValueError(f"num_instances (K) must be >= 1, got {num_instances}")
        if batch_size < 1 or batch_size % (2 * num_instances) != 0:
            raise ValueError(
                f"batch_size ({batch_size}) must be a positive multiple of 2 * num_instances "
                f"(2 * {num_instances} = {2 * num_instances}): each identity brings K visible "
                "and K infrared images"
            )
        self._world_size = int(comm.get_world_size() if world_size is None else world_size)
        self._rank = int(comm.get_rank() if rank is None else rank)
        if not 0 <= self._rank < self._world_size:
            raise ValueError(f"rank {self._rank} is not in [0, world_size={self._world_size})")

        self._batch_size = int(batch_size)
        self._num_instances = int(num_instances)
        self._num_pids = self._batch_size // (2 * self._num_instances)

        visible: dict[int, list[int]] = {}
        infrared: dict[int, list[int]] = {}
        for index, (pid, vis) in enumerate(zip(pids, is_visible, strict=True)):
            (visible if bool(vis) else infrared).setdefault(int(pid), []).append(index)
        all_pids = set(visible) | set(infrared)
        usable = sorted(set(visible) & set(infrared))
        self._num_excluded = len(all_pids) - len(usable)
        if self._num_excluded:
            logger.info(
                "CrossModalityIdentitySampler: %d of %d identities have images of only one "
                "modality and are not sampled",
                self._num_excluded,
                len(all_pids),
            )
        if len(usable) < self._num_pids:
            raise ValueError(
                f"batch_size {self._batch_size} with num_instances {self._num_instances} needs "
                f"P = {self._num_pids} identities with both visible and infrared images, but only "
                f"{len(usable)} have both"
            )
        self._pids = usable
        self._visible = [np.asarray(visible[p], dtype=np.int64) for p in usable]
        self._infrared = [np.asarray(infrared[p], dtype=np.int64) for p in usable]
        k = self._num_instances
        self._chunks_per_pid = np.array([-(-len(ir) // k) for ir in self._infrared], np.int64)

        self._epoch_capacity = _num_batches(self._chunks_per_pid, self._num_pids)
        self._batches_per_epoch = self._epoch_capacity // self._world_size
        if self._batches_per_epoch < 1:
            raise ValueError(
                f"one epoch holds {self._epoch_capacity} batches of P = {self._num_pids} "
                f"identities, fewer than world_size = {self._world_size}"
            )

        self._seed = int(comm.shared_random_seed() if seed is None else seed)

    @property
    def batches_per_epoch(self) -> int:
        """Per-rank batches in one epoch: ``floor(B / world_size)``, B as in the module doc."""
        return self._batches_per_epoch

    @property
    def batch_size(self) -> int:
        """Per-rank batch size ``2·P·K``."""
        return self._batch_size

    @property
    def num_pids_per_batch(self) -> int:
        """P, identities per batch."""
        return self._num_pids

    @property
    def num_instances(self) -> int:
        """K, images per identity and per modality in a batch."""
        return self._num_instances

    @property
    def pids(self) -> list[int]:
        """Sorted identities that are sampled (those with both modalities)."""
        return list(self._pids)

    @property
    def num_excluded_pids(self) -> int:
        """Identities left out because they have images of only one modality."""
        return self._num_excluded

    @property
    def seed(self) -> int:
        return self._seed

    def __iter__(self) -> Iterator[int]:
        batches = itertools.islice(self._global_batches(), self._rank, None, self._world_size)
        for batch in batches:
            yield from batch

    def _global_batches(self) -> Iterator[list[int]]:
        # Each call restarts the same stream, as fastreid's samplers do.
        rng = np.random.default_rng(self._seed)
        while True:
            yield from self._epoch(rng)

    def _epoch(self, rng: np.random.Generator) -> list[list[int]]:
        """One global epoch: ``world_size * batches_per_epoch`` per-rank batches."""
        num_batches = self._batches_per_epoch * self._world_size
        k, p = self._num_instances, self._num_pids
        owned = np.minimum(self._chunks_per_pid, num_batches)
        ir_chunks = [_chunks(a, int(n), k, rng) for a, n in zip(self._infrared, owned, strict=True)]
        vis_chunks = [_chunks(a, int(n), k, rng) for a, n in zip(self._visible, owned, strict=True)]
        left = owned.copy()
        batches: list[list[int]] = []
        for remaining in range(num_batches, 0, -1):
            # Invariant: sum(min(left, remaining)) >= p * remaining. Identities with at least
            # `remaining` chunks lose one unit of that sum whether drawn or not, the others only
            # when drawn, so at least (#those - slack) of them must be drawn now.
            slack = int(np.minimum(left, remaining).sum()) - p * remaining
            full = np.flatnonzero(left >= remaining)
            forced = rng.choice(full, size=max(0, len(full) - slack), replace=False)
            candidates = np.setdiff1d(np.flatnonzero(left > 0), forced)
            others = rng.choice(candidates, size=p - len(forced), replace=False)
            chosen = rng.permutation(np.concatenate([forced, others]))
            used = owned[chosen] - left[chosen]
            left[chosen] -= 1
            vis = [vis_chunks[i][u] for i, u in zip(chosen, used, strict=True)]
            ir = [ir_chunks[i][u] for i, u in zip(chosen, used, strict=True)]
            batches.append(np.concatenate(vis + ir).tolist())
        return batches

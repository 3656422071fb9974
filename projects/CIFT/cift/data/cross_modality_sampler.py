"""Cross-modality identity sampler: P identities, K visible then K infrared images each.

Every per-rank batch of ``batch_size = 2·P·K`` indices is laid out ``[P×K visible ; P×K infrared]``
with the same identity order in both halves::

    position            p*K ... p*K+K-1         P*K + p*K ... P*K + p*K+K-1
    content             K visible of id p        K infrared of id p

The graph masks (H2FT) and the HCC loss rely on this order.

Epoch draw (the authors' ``sysuSampler`` / ``regdbSampler``): for every identity, its visible and
its infrared images are shuffled and cut into chunks of K (the ``n mod K`` left over are not used
that epoch); an identity with fewer than K images of a modality gets one chunk of K draws with
replacement instead. Then, while at least P identities are available, P of them are picked
uniformly without replacement, each gives its next visible and its next infrared chunk, and an
identity whose visible or infrared chunks are used up stops being available. So no image repeats
within an epoch (except in those with-replacement chunks), and the number of batches ``B_e``
varies from draw to draw (about 320-350 on SYSU-MM01 with P = 8, K = 4).

Epoch ``e``'s draw is a pure function of ``(seed, e)`` (a numpy Generator seeded with
``[seed, e, 0]``), so the length of any epoch is known without drawing the others and iteration
can start at any epoch (:meth:`CrossModalityIdentitySampler.set_epoch`).

Fixed length (``batches_per_epoch=N``, the trainer's ``SOLVER.ITERS_PER_EPOCH``): epoch ``e`` is
the first N per-rank batches of the draws seeded ``[seed, e, 0]``, ``[seed, e, 1]``, ... taken
one after the other, for schedules that need every epoch to have the same length.

Ranks: every rank makes the same draws (same seed, ``comm.shared_random_seed()`` by default);
of a draw of ``B`` batches, rank ``r`` takes batches ``r, r + W, ...`` below
``W · floor(B / W)`` (``W`` = world size), so the ranks' shards are disjoint and every rank runs
``floor(B / W)`` batches.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch.utils.data
from fastreid.utils import comm

__all__ = ["CrossModalityIdentitySampler", "draw_epoch", "shard"]

logger = logging.getLogger(__name__)


def _chunks(indices: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's chunks of one identity and modality, shape ``(max(1, n // k), k)``.

    ``n >= k``: a permutation of ``indices`` cut into ``n // k`` chunks (the last ``n mod k`` not
    used); ``n < k``: one chunk of ``k`` draws with replacement, as the authors' sampler does.
    """
    n, num_full = len(indices), len(indices) // k
    if n < k:
        return rng.choice(indices, size=(1, k), replace=True)
    return rng.permutation(indices)[: num_full * k].reshape(num_full, k)


def draw_epoch(visible: Sequence[np.ndarray], infrared: Sequence[np.ndarray], p: int, k: int,
               rng: np.random.Generator) -> list[list[int]]:
    """The authors' epoch draw (module docstring): global batches ``[P×K visible ; P×K infrared]``.

    Args:
        visible, infrared: per identity, the indices of its visible / infrared images (both
            non-empty).
        p: identities per batch P. k: images per identity and modality K.
        rng: the generator of this draw.
    Returns:
        the batches, each a list of ``2·p·k`` indices, in draw order.
    """
    vis = [_chunks(a, k, rng) for a in visible]
    ir = [_chunks(a, k, rng) for a in infrared]
    left_vis = np.array([len(c) for c in vis])
    left_ir = np.array([len(c) for c in ir])
    available = np.ones(len(vis), dtype=bool)
    batches: list[list[int]] = []
    while available.sum() >= p:
        chosen = rng.choice(np.flatnonzero(available), size=p, replace=False)
        halves = ([vis[i][len(vis[i]) - left_vis[i]] for i in chosen]
                  + [ir[i][len(ir[i]) - left_ir[i]] for i in chosen])
        batches.append(np.concatenate(halves).tolist())
        left_vis[chosen] -= 1
        left_ir[chosen] -= 1
        available[chosen] = (left_vis[chosen] > 0) & (left_ir[chosen] > 0)
    return batches


def shard(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """Rank ``rank``'s batches of a global draw: ``rank, rank + W, ...`` below ``W·floor(B/W)``."""
    usable = len(batches) // world_size * world_size
    return batches[rank:usable:world_size]


class CrossModalityIdentitySampler(torch.utils.data.Sampler[int]):
    """Sampler of ``[P×K visible ; P×K infrared]`` batches for VI-ReID training, epoch by epoch.

    See the module docstring for the layout, the epoch draw and the sharding across ranks. Use it
    with ``BatchSampler(sampler, batch_size, drop_last=True)`` (fastreid's
    ``build_reid_train_loader(..., sampler=...)`` does that): each per-rank batch then is one
    complete block. ``iter()`` yields the epochs from :meth:`set_epoch`'s epoch on (0 by
    default), one after the other, forever (as fastreid's training samplers do) or for the
    number of epochs given to :meth:`set_epoch`.

    Args:
        pids: identity label of each index of the training set.
        is_visible: modality of each index of the training set (True: visible, False: infrared).
        batch_size: per-rank mini-batch size ``2·P·K``.
        num_instances: K, images per identity and per modality in a batch.
        seed: seed of the shared draws; ``comm.shared_random_seed()`` when None (every rank must
            then construct the sampler, as with fastreid's samplers).
        rank: this process's rank; ``comm.get_rank()`` when None.
        world_size: number of ranks; ``comm.get_world_size()`` when None.
        batches_per_epoch: None: an epoch is one draw (its length varies); N > 0: every epoch
            has N per-rank batches (see the module docstring).
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
        batches_per_epoch: int | None = None,
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
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be None or >= 1, got {batches_per_epoch}")
        self._world_size = int(comm.get_world_size() if world_size is None else world_size)
        self._rank = int(comm.get_rank() if rank is None else rank)
        if not 0 <= self._rank < self._world_size:
            raise ValueError(f"rank {self._rank} is not in [0, world_size={self._world_size})")

        self._batch_size = int(batch_size)
        self._num_instances = int(num_instances)
        self._num_pids = self._batch_size // (2 * self._num_instances)
        self._fixed_length = None if batches_per_epoch is None else int(batches_per_epoch)

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
        # Every identity starts available and a batch retires at most P of them, so a draw
        # holds at least this many batches.
        min_draw = (len(usable) - self._num_pids) // self._num_pids + 1
        if min_draw < self._world_size:
            raise ValueError(
                f"a draw may hold only {min_draw} batches of P = {self._num_pids} "
                f"identities ({len(usable)} usable), fewer than world_size = {self._world_size}"
            )
        self._seed = int(comm.shared_random_seed() if seed is None else seed)
        self._start_epoch = 0
        self._num_epochs: int | None = None
        self._lengths: dict[int, int] = {}

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

    @property
    def fixed_length(self) -> int | None:
        """Per-rank batches of every epoch when fixed, else None."""
        return self._fixed_length

    def draw(self, epoch: int, part: int = 0) -> list[list[int]]:
        """Global batches of draw ``part`` of epoch ``epoch`` (every rank's, in draw order)."""
        rng = np.random.default_rng([self._seed, int(epoch), int(part)])
        return draw_epoch(self._visible, self._infrared, self._num_pids, self._num_instances, rng)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of epoch ``epoch`` (each ``batch_size`` indices)."""
        if self._fixed_length is None:
            return shard(self.draw(epoch), self._rank, self._world_size)
        batches: list[list[int]] = []
        for part in itertools.count():
            batches += shard(self.draw(epoch, part), self._rank, self._world_size)
            if len(batches) >= self._fixed_length:
                return batches[: self._fixed_length]
        raise AssertionError("unreachable")

    def batches_in_epoch(self, epoch: int) -> int:
        """Number of this rank's batches in epoch ``epoch`` (the same on every rank)."""
        if self._fixed_length is not None:
            return self._fixed_length
        if epoch not in self._lengths:
            self._lengths[epoch] = len(self.draw(epoch)) // self._world_size
        return self._lengths[epoch]

    def set_epoch(self, epoch: int, num_epochs: int | None = None) -> None:
        """The next ``iter()`` starts at epoch ``epoch`` and yields ``num_epochs`` epochs
        (None: all following epochs, forever)."""
        if epoch < 0 or (num_epochs is not None and num_epochs < 0):
            raise ValueError(f"set_epoch({epoch}, {num_epochs}): expected non-negative values")
        self._start_epoch, self._num_epochs = int(epoch), num_epochs

    def state_dict(self) -> dict[str, int]:
        """What a resumed run needs to repeat the draws: the shared seed."""
        return {"seed": self._seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._seed = int(state["seed"])
        self._lengths.clear()

    def __iter__(self) -> Iterator[int]:
        epochs = itertools.count(self._start_epoch)
        if self._num_epochs is not None:
            epochs = itertools.islice(epochs, self._num_epochs)
        for epoch in epochs:
            for batch in self.epoch_batches(epoch):
                yield from batch

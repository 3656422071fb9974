"""Property tests of CrossModalityIdentitySampler over many data-set shapes.

Layout checked for every batch (docs/design.md §2): ``[P×K visible ; P×K infrared]``,
identity ``p``'s K visible images at ``p*K ...`` and its K infrared images at
``P*K + p*K ...``, P distinct identities, the same identity order in both halves.
"""
from __future__ import annotations

import itertools
import logging
from collections import Counter

import numpy as np
import pytest
import torch
from fastreid.utils import comm
from torch.utils.data import BatchSampler, DataLoader, Dataset

from cift.data.cross_modality_sampler import CrossModalityIdentitySampler


def make_data(counts: list[tuple[int, int]], seed: int = 0) -> tuple[list[int], list[bool]]:
    """pids / is_visible for identities ``100 + i`` with ``counts[i] = (n_visible, n_infrared)``,
    in a shuffled order so that indices of one identity are not contiguous."""
    items = [(100 + i, True) for i, (nv, _) in enumerate(counts) for _ in range(nv)]
    items += [(100 + i, False) for i, (_, ni) in enumerate(counts) for _ in range(ni)]
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[j][0] for j in order], [items[j][1] for j in order]


def random_counts(num_ids: int, low: int, high: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
            for _ in range(num_ids)]


def take_batches(sampler: CrossModalityIdentitySampler, num: int) -> list[list[int]]:
    stream = list(itertools.islice(iter(sampler), num * sampler.batch_size))
    bs = sampler.batch_size
    return [stream[i:i + bs] for i in range(0, len(stream), bs)]


def check_batch(batch: list[int], pids: list[int], is_visible: list[bool], p: int, k: int) -> None:
    """Assert the [P×K visible ; P×K infrared] layout and the replacement rule."""
    assert len(batch) == 2 * p * k
    per_id_vis = Counter(q for q, v in zip(pids, is_visible, strict=True) if v)
    per_id_ir = Counter(q for q, v in zip(pids, is_visible, strict=True) if not v)
    order = []
    for half, visible, available in ((0, True, per_id_vis), (1, False, per_id_ir)):
        ids = []
        for j in range(p):
            chunk = batch[half * p * k + j * k: half * p * k + (j + 1) * k]
            assert all(is_visible[i] is visible for i in chunk)
            chunk_pids = {pids[i] for i in chunk}
            assert len(chunk_pids) == 1, "a chunk mixes identities"
            pid = chunk_pids.pop()
            ids.append(pid)
            if available[pid] >= k:
                assert len(set(chunk)) == k, "duplicates although the identity has >= K images"
            else:  # K draws with replacement from its images
                assert len(set(chunk)) <= available[pid]
        assert len(set(ids)) == p, "an identity appears twice in one batch"
        order.append(ids)
    assert order[0] == order[1], "identity order differs between the two halves"


# (P, K, counts): sizes from tiny to skewed; counts include < K images and unequal modalities.
CASES = [
    (1, 1, [(1, 1)]),
    (2, 1, [(1, 3), (2, 1), (5, 5)]),
    (2, 2, [(1, 1), (3, 2), (2, 7)]),
    (3, 4, random_counts(7, 1, 12, seed=1)),
    (4, 2, random_counts(9, 2, 9, seed=2)),
    (8, 4, random_counts(40, 3, 30, seed=3)),
    (6, 3, random_counts(6, 3, 3, seed=4)),
    (2, 4, [(60, 200)] + random_counts(5, 1, 6, seed=5)),  # one identity owns most chunks
    (5, 1, random_counts(11, 1, 4, seed=6)),
]


def chunk_budget(counts: list[tuple[int, int]], k: int) -> dict[int, tuple[int, int]]:
    """Per usable identity ``100 + i``: its visible and infrared chunks in one draw (plain loop:
    floor(n / K), or 1 when it has fewer than K images)."""
    return {100 + i: (max(1, nv // k), max(1, ni // k))
            for i, (nv, ni) in enumerate(counts) if nv > 0 and ni > 0}


def replay(batches: list[list[int]], pids: list[int], counts: list[tuple[int, int]], p: int,
           k: int) -> None:
    """Replay a draw with the authors' rule: every batch takes P identities still available,
    an identity stops being available when its visible or infrared chunks are used up, and the
    draw ends exactly when fewer than P identities are left."""
    budget = chunk_budget(counts, k)
    used = dict.fromkeys(budget, 0)
    available = set(budget)
    for batch in batches:
        assert len(available) >= p, "a batch was drawn with fewer than P identities available"
        ids = [pids[batch[j * k]] for j in range(p)]
        assert set(ids) <= available, "an identity was drawn after its chunks ran out"
        for pid in ids:
            used[pid] += 1
            if used[pid] == min(budget[pid]):
                available.discard(pid)
    assert len(available) < p, "the draw stopped although P identities were still available"


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_every_batch_has_the_layout(p: int, k: int, counts: list[tuple[int, int]]) -> None:
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=7)
    assert sampler.num_pids_per_batch == p and sampler.num_instances == k
    length = sum(sampler.batches_in_epoch(e) for e in range(3))
    for batch in take_batches(sampler, length + 1):
        check_batch(batch, pids, is_visible, p, k)


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_a_draw_ends_when_fewer_than_p_identities_remain(
    p: int, k: int, counts: list[tuple[int, int]]
) -> None:
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=1)
    for epoch in range(4):
        batches = sampler.epoch_batches(epoch)
        assert batches == sampler.draw(epoch)  # one rank: the whole draw
        assert sampler.batches_in_epoch(epoch) == len(batches)
        replay(batches, pids, counts, p, k)


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_no_image_repeats_within_an_epoch(p: int, k: int, counts: list[tuple[int, int]]) -> None:
    """An image appears at most once per epoch unless its identity has fewer than K images of
    that modality; each identity's chunks in an epoch are disjoint."""
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=2)
    n_vis = Counter(q for q, v in zip(pids, is_visible, strict=True) if v)
    n_ir = Counter(q for q, v in zip(pids, is_visible, strict=True) if not v)
    for epoch in range(3):
        seen = Counter(i for b in sampler.epoch_batches(epoch) for i in b)
        for index, times in seen.items():
            n = (n_vis if is_visible[index] else n_ir)[pids[index]]
            if n >= k:
                assert times == 1, f"image {index} used {times} times in epoch {epoch}"


def test_lengths_vary_by_draw_and_any_epoch_starts_alone() -> None:
    pids, is_visible = make_data(random_counts(40, 3, 30, seed=3))
    sampler = CrossModalityIdentitySampler(pids, is_visible, 64, 4, seed=5)
    lengths = [sampler.batches_in_epoch(e) for e in range(12)]
    assert len(set(lengths)) > 1, "the authors' draw gives epochs of different lengths"
    fresh = CrossModalityIdentitySampler(pids, is_visible, 64, 4, seed=5)
    assert fresh.batches_in_epoch(9) == lengths[9]  # without drawing epochs 0..8
    fresh.set_epoch(7, 2)
    assert take_batches(fresh, 10**6) == sampler.epoch_batches(7) + sampler.epoch_batches(8)
    sampler.set_epoch(7)  # from epoch 7 on, forever: the same stream continues into epoch 9
    assert take_batches(sampler, sum(lengths[7:10]) + 1)[:-1] == (
        sampler.epoch_batches(7) + sampler.epoch_batches(8) + sampler.epoch_batches(9))


def test_fixed_epoch_length() -> None:
    """batches_per_epoch=N: every epoch has N well-formed batches, built from the draws
    [seed, e, 0], [seed, e, 1], ... one after the other."""
    k, p, n = 2, 3, 25
    counts = random_counts(10, 1, 8, seed=9)
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=3,
                                           batches_per_epoch=n)
    assert sampler.fixed_length == n
    first = sampler.draw(0, 0)
    assert len(first) < n  # so epoch 0 spans two draws
    for epoch in range(3):
        assert sampler.batches_in_epoch(epoch) == n
        batches = sampler.epoch_batches(epoch)
        assert len(batches) == n
        for batch in batches:
            check_batch(batch, pids, is_visible, p, k)
    expected, part = [], 0
    while len(expected) < n:
        expected, part = expected + sampler.draw(0, part), part + 1
    expected = expected[:n]
    assert sampler.epoch_batches(0) == expected
    assert take_batches(sampler, 2 * n) == sampler.epoch_batches(0) + sampler.epoch_batches(1)


def sysu_like_counts(seed: int = 0) -> list[tuple[int, int]]:
    """395 identities with about SYSU-MM01's training image counts (22,258 visible, 11,909
    infrared): visible 20-92 and infrared 10-50 images per identity."""
    rng = np.random.default_rng(seed)
    return [(int(v), int(i)) for v, i in zip(rng.integers(20, 93, 395), rng.integers(10, 51, 395),
                                              strict=True)]


def test_sysu_sized_epochs_have_a_plausible_length() -> None:
    """P = 8, K = 4 on SYSU-sized identities: one draw is limited by the infrared chunks
    (about 12,000 / 4 / 8 = 375 batches) and ends when fewer than 8 identities remain."""
    counts = sysu_like_counts()
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 64, 4, seed=0)
    lengths = [sampler.batches_in_epoch(e) for e in range(4)]
    assert all(320 <= n <= 350 for n in lengths), lengths


def test_same_seed_same_stream_and_restart() -> None:
    pids, is_visible = make_data(random_counts(20, 1, 10, seed=0))
    a = CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=123)
    b = CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=123)
    assert take_batches(a, 40) == take_batches(b, 40)
    assert take_batches(a, 40) == take_batches(a, 40)  # a new iter() restarts the stream


def test_different_seeds_differ() -> None:
    pids, is_visible = make_data(random_counts(20, 1, 10, seed=0))
    streams = {
        tuple(itertools.chain.from_iterable(take_batches(
            CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=s), 10)))
        for s in range(5)
    }
    assert len(streams) == 5


def test_defaults_come_from_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    pids, is_visible = make_data(random_counts(20, 2, 10, seed=0))
    monkeypatch.setattr(comm, "shared_random_seed", lambda: 99)
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "get_rank", lambda: 1)
    default = CrossModalityIdentitySampler(pids, is_visible, 16, 2)
    explicit = CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=99, rank=1, world_size=2)
    assert default.seed == 99
    assert take_batches(default, 10) == take_batches(explicit, 10)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_rank_shards_are_disjoint_and_equal_in_length(world_size: int) -> None:
    """Rank r runs global batches r, r+W, ... of each epoch's draw below W*floor(B/W): the
    shards have the same length on every rank, never share an image, and interleave back to the
    draw's first W*floor(B/W) batches."""
    k, p = 2, 3
    counts = random_counts(30, 2, 12, seed=world_size)
    pids, is_visible = make_data(counts)
    shards = [
        CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=5, rank=r,
                                     world_size=world_size)
        for r in range(world_size)
    ]
    n_vis = Counter(q for q, v in zip(pids, is_visible, strict=True) if v)
    n_ir = Counter(q for q, v in zip(pids, is_visible, strict=True) if not v)
    for epoch in range(3):
        draw = shards[0].draw(epoch)
        per_rank = [s.epoch_batches(epoch) for s in shards]
        lengths = {len(b) for b in per_rank} | {s.batches_in_epoch(epoch) for s in shards}
        assert lengths == {len(draw) // world_size}
        interleaved = [per_rank[j % world_size][j // world_size]
                       for j in range(world_size * len(per_rank[0]))]
        assert interleaved == draw[: len(interleaved)]
        for r, batches in enumerate(per_rank):
            for batch in batches:
                check_batch(batch, pids, is_visible, p, k)
            mine = {i for b in batches for i in b
                    if (n_vis if is_visible[i] else n_ir)[pids[i]] >= k}
            for other in per_rank[r + 1:]:
                assert not mine & {i for b in other for i in b}, "two ranks share an image"
    # iteration yields the same epochs as epoch_batches
    for r, s in enumerate(shards):
        s.set_epoch(0, 2)
        assert take_batches(s, 10**6) == s.epoch_batches(0) + s.epoch_batches(1), r


def test_state_dict_restores_the_seed() -> None:
    pids, is_visible = make_data(random_counts(20, 1, 10, seed=0))
    a = CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=123)
    b = CrossModalityIdentitySampler(pids, is_visible, 16, 2, seed=9)
    b.load_state_dict(a.state_dict())
    assert b.seed == 123 and b.epoch_batches(3) == a.epoch_batches(3)


def test_duplicates_only_when_fewer_than_k_images() -> None:
    k, p = 4, 2
    counts = [(2, 9), (8, 1), (4, 4), (6, 5)]  # id 100: 2 visible, id 101: 1 infrared
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=0)
    dup_halves = set()
    for batch in take_batches(sampler, 50):
        check_batch(batch, pids, is_visible, p, k)
        for j in range(p):
            for half in (0, 1):
                chunk = batch[half * p * k + j * k: half * p * k + (j + 1) * k]
                if len(set(chunk)) < k:
                    dup_halves.add((pids[chunk[0]], half))
    assert dup_halves == {(100, 0), (101, 1)}


def test_single_modality_identities_are_excluded(caplog: pytest.LogCaptureFixture) -> None:
    counts = [(3, 3), (4, 0), (0, 5), (2, 6), (5, 2)]  # ids 101 and 102 have one modality
    pids, is_visible = make_data(counts)
    with caplog.at_level(logging.INFO, logger="cift.data.cross_modality_sampler"):
        sampler = CrossModalityIdentitySampler(pids, is_visible, 8, 2, seed=0)
    assert "2 of 5 identities" in caplog.text
    assert sampler.pids == [100, 103, 104] and sampler.num_excluded_pids == 2
    used = {pids[i] for b in take_batches(sampler, 30) for i in b}
    assert used == {100, 103, 104}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 12, "num_instances": 4}, r"batch_size \(12\).*2 \* 4 = 8"),
        ({"batch_size": 6, "num_instances": 2}, r"batch_size \(6\).*num_instances"),
        ({"batch_size": 0, "num_instances": 2}, "batch_size"),
        ({"batch_size": 8, "num_instances": 0}, "num_instances"),
        ({"batch_size": 16, "num_instances": 2}, r"P = 4 identities.*only 3 have both"),
        ({"batch_size": 4, "num_instances": 1, "rank": 2, "world_size": 2}, "rank 2"),
        ({"batch_size": 4, "num_instances": 1, "rank": 0, "world_size": 10}, "world_size = 10"),
        ({"batch_size": 4, "num_instances": 1, "batches_per_epoch": 0}, "batches_per_epoch"),
    ],
)
def test_impossible_settings_raise(kwargs: dict, match: str) -> None:
    pids, is_visible = make_data([(3, 3), (4, 0), (2, 2), (2, 1)])
    with pytest.raises(ValueError, match=match):
        CrossModalityIdentitySampler(pids, is_visible, seed=0, **kwargs)


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same length"):
        CrossModalityIdentitySampler([1, 2, 3], [True, False], 2, 1, seed=0)


class _TinyVI(Dataset):
    def __init__(self, pids: list[int], is_visible: list[bool]) -> None:
        self.pids, self.is_visible = pids, is_visible

    def __len__(self) -> int:
        return len(self.pids)

    def __getitem__(self, index: int) -> dict:
        modality = "visible" if self.is_visible[index] else "infrared"
        return {"index": index, "pid": self.pids[index], "modality": modality}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_round_trip(num_workers: int) -> None:
    k, p = 2, 3
    pids, is_visible = make_data(random_counts(10, 1, 6, seed=8))
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=4)
    loader = DataLoader(
        _TinyVI(pids, is_visible),
        batch_sampler=BatchSampler(sampler, 2 * p * k, drop_last=True),
        num_workers=num_workers,
    )
    for batch in itertools.islice(loader, 5):
        index = batch["index"].tolist()
        check_batch(index, pids, is_visible, p, k)
        assert torch.equal(batch["pid"], torch.tensor([pids[i] for i in index]))
        assert batch["modality"] == ["visible"] * (p * k) + ["infrared"] * (p * k)

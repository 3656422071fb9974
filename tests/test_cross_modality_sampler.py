"""Property tests of CrossModalityIdentitySampler over many data-set shapes.

Layout checked for every batch (DESIGN.md §2): ``[P×K visible ; P×K infrared]``, identity ``p``'s
K visible images at ``p*K ...`` and its K infrared images at ``P*K + p*K ...``, P distinct
identities, the same identity order in both halves.
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


def reference_epoch_length(counts: list[tuple[int, int]], p: int, k: int) -> int:
    """Plain loop: largest b with sum_i min(ceil(n_ir_i / K), b) >= P*b over usable ids."""
    chunks = [-(-ni // k) for nv, ni in counts if nv > 0 and ni > 0]
    return max(b for b in range(sum(chunks) + 1) if sum(min(c, b) for c in chunks) >= p * b)


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
            else:
                # all its images, the rest drawn again
                assert len(set(chunk)) == available[pid]
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


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_every_batch_has_the_layout(p: int, k: int, counts: list[tuple[int, int]]) -> None:
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=7)
    assert sampler.num_pids_per_batch == p and sampler.num_instances == k
    for batch in take_batches(sampler, 3 * sampler.batches_per_epoch + 1):
        check_batch(batch, pids, is_visible, p, k)


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_batches_per_epoch_matches_definition(
    p: int, k: int, counts: list[tuple[int, int]]
) -> None:
    pids, is_visible = make_data(counts)
    for world_size in (1, 2, 3):
        length = reference_epoch_length(counts, p, k)
        if length < world_size:
            continue
        sampler = CrossModalityIdentitySampler(
            pids, is_visible, 2 * p * k, k, seed=0, rank=0, world_size=world_size
        )
        assert sampler.batches_per_epoch == length // world_size


@pytest.mark.parametrize(("p", "k", "counts"), CASES)
def test_epochs_consume_each_identity_by_chunks(
    p: int, k: int, counts: list[tuple[int, int]]
) -> None:
    """In each epoch window of `batches_per_epoch` batches an identity appears at most
    min(ceil(n_ir / K), B) times, and never more often than its infrared images allow."""
    pids, is_visible = make_data(counts)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=3)
    bpe = sampler.batches_per_epoch
    n_ir = Counter(q for q, v in zip(pids, is_visible, strict=True) if not v)
    batches = take_batches(sampler, 3 * bpe)
    for epoch in range(3):
        appearances = Counter(pids[b[j * k]] for b in batches[epoch * bpe:(epoch + 1) * bpe]
                              for j in range(p))
        assert sum(appearances.values()) == p * bpe
        for pid, times in appearances.items():
            assert times <= min(-(-n_ir[pid] // k), bpe)


@pytest.mark.parametrize(
    ("p", "k", "num_ids", "seed"), [(2, 2, 6, 0), (4, 3, 12, 1), (8, 4, 32, 2)]
)
def test_exact_epoch_uses_every_infrared_image_once(
    p: int, k: int, num_ids: int, seed: int
) -> None:
    """n_ir a multiple of K and sum of chunks a multiple of P: each epoch window is one exact
    pass over the infrared images, which also checks that the iterator's epochs have exactly
    `batches_per_epoch` batches (a misaligned window would miss or repeat images)."""
    rng = np.random.default_rng(seed)
    chunks = rng.integers(1, 5, size=num_ids)
    chunks[-1] += (-chunks.sum()) % p
    assert chunks.max() <= chunks.sum() // p  # so B = sum / P exactly
    counts = [(int(rng.integers(1, 3 * k)), int(c) * k) for c in chunks]
    pids, is_visible = make_data(counts, seed)
    sampler = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=seed)
    assert sampler.batches_per_epoch == chunks.sum() // p
    infrared = sorted(i for i, v in enumerate(is_visible) if not v)
    bpe = sampler.batches_per_epoch
    batches = take_batches(sampler, 3 * bpe)
    for epoch in range(3):
        seen = [i for b in batches[epoch * bpe:(epoch + 1) * bpe] for i in b[p * k:]]
        assert sorted(seen) == infrared


@pytest.mark.parametrize("trial", range(20))
def test_random_shapes_keep_the_planned_epoch(trial: int) -> None:
    """Random (P, K, world size, counts, skew): every shard yields whole, well-formed batches and
    each epoch window respects the per-identity chunk budget on every rank together."""
    rng = np.random.default_rng(1000 + trial)
    k, p, world_size = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    counts = random_counts(int(rng.integers(p, p + 10)), 1, 9, seed=trial)
    if trial % 3 == 0:
        counts[0] = (counts[0][0], 40)  # one identity with far more chunks than the others
    pids, is_visible = make_data(counts, trial)
    # an epoch shorter than the world size is an error (covered by the error test)
    world_size = min(world_size, reference_epoch_length(counts, p, k))
    shards = [
        CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=trial, rank=r,
                                     world_size=world_size)
        for r in range(world_size)
    ]
    bpe = shards[0].batches_per_epoch
    n_ir = Counter(q for q, v in zip(pids, is_visible, strict=True) if not v)
    per_rank = [take_batches(s, 2 * bpe) for s in shards]
    for epoch in range(2):
        window = [b for r in per_rank for b in r[epoch * bpe:(epoch + 1) * bpe]]
        for batch in window:
            check_batch(batch, pids, is_visible, p, k)
        appearances = Counter(pids[b[j * k]] for b in window for j in range(p))
        for pid, times in appearances.items():
            assert times <= -(-n_ir[pid] // k)


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
def test_rank_shards_are_disjoint_blocks_of_one_stream(world_size: int) -> None:
    """Shards of ranks 0..W-1 interleaved form one global stream whose epochs (W * bpe batches)
    are exact passes over the infrared images: every infrared image lands on exactly one rank
    per epoch, so the ranks never share a batch, and each shard is well formed."""
    k, p = 2, 3
    counts = [(5, 2 * (1 + i % 3)) for i in range(12)]  # 24 chunks: divisible by P and by W*P
    pids, is_visible = make_data(counts)
    shards = [
        CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=5, rank=r,
                                     world_size=world_size)
        for r in range(world_size)
    ]
    bpe = shards[0].batches_per_epoch
    assert bpe == 8 // world_size
    per_rank = [take_batches(s, 2 * bpe) for s in shards]
    infrared = sorted(i for i, v in enumerate(is_visible) if not v)
    for epoch in range(2):
        window = [b for r in range(world_size) for b in per_rank[r][epoch * bpe:(epoch + 1) * bpe]]
        for batch in window:
            check_batch(batch, pids, is_visible, p, k)
        if 8 % world_size == 0:  # the global epoch is the full pass
            assert sorted(i for b in window for i in b[p * k:]) == infrared
        else:  # a shorter global epoch: still no infrared image twice in it
            seen = [i for b in window for i in b[p * k:]]
            assert len(seen) == len(set(seen))


@pytest.mark.parametrize("world_size", [2, 4])
def test_shards_interleave_to_the_single_rank_stream(world_size: int) -> None:
    """When B is a multiple of W, the W ranks' epochs have the same length as the single-rank
    epoch and interleaving the shards (rank r takes global batches r, r+W, ...) gives back
    exactly the world_size=1 stream with the same seed."""
    k, p = 2, 2
    counts = [(3, 4)] * 8  # 16 chunks, B = 8
    pids, is_visible = make_data(counts)
    single = CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=11, world_size=1,
                                          rank=0)
    shards = [
        take_batches(CrossModalityIdentitySampler(pids, is_visible, 2 * p * k, k, seed=11, rank=r,
                                                  world_size=world_size), 6)
        for r in range(world_size)
    ]
    interleaved = [shards[j % world_size][j // world_size] for j in range(6 * world_size)]
    assert interleaved == take_batches(single, 6 * world_size)


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

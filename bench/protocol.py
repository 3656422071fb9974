#!/usr/bin/env python
"""Time of the full SYSU-MM01 evaluation (4 settings x 10 trials, CIFT and CIFT†) from random
features at the real sizes: 3,803 infrared queries; galleries of 301 / 3,010 (all-search
single / multi-shot) and 112 / 1,120 (indoor) images drawn from a 96-identity visible pool.

    .venv/bin/python bench/protocol.py [--dim 2048] [--transfer dense|sparse] [--top-r R]

With --top-r R the trials are scored from each query's R nearest gallery images
(TEST.RETRIEVAL.TOP_R) instead of full distance matrices. Prints wall-clock and CPU seconds: on
a busy machine, the CPU time of a one-thread run (OMP_NUM_THREADS=1) bounds its wall-clock time
on an idle one.
"""
import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))

from cift.evaluation.tasks import run_tasks, run_tasks_top_r, sysu_tasks  # noqa: E402
from cift.evaluation.vi_evaluator import protocol_distances, protocol_retrieval  # noqa: E402
from cift.modeling.graph import GraphSettings  # noqa: E402
from cift.modeling.pool_transfer import numpy_pool_transfer  # noqa: E402
from cift.search_settings import TransferSettings  # noqa: E402


def sysu_sized_items(rng: np.random.Generator, per_folder: int = 12) -> tuple[list, int]:
    """Queries and a gallery pool whose (identity, camera) folders give SYSU's gallery sizes:
    112 indoor folders (cams 1, 2) and 189 outdoor ones (cams 4, 5) over 96 identities."""
    folders = [(p, c) for p in range(96) for c in (1, 2) if c == 1 or p < 16]  # 112
    folders += [(p, c) for p in range(96) for c in (4, 5) if c == 4 or p < 93]  # 189
    pool = [(f"g/cam{c}/{p:04d}/{n:04d}.jpg", p, c, "visible")
            for p, c in folders for n in range(per_folder)]
    q_pids = rng.integers(0, 96, 3803)
    query = [(f"q/{i}.jpg", int(p), int(rng.choice([3, 6])), "infrared")
             for i, p in enumerate(q_pids)]
    return query + pool, len(query)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--transfer", choices=["dense", "sparse"], default="sparse")
    parser.add_argument("--top-r", type=int, default=0, help="score from top-R lists (0: off)")
    parser.add_argument("--backend", choices=["torch", "faiss"], default="torch",
                        help="search of the top-R lists")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    items, num_query = sysu_sized_items(rng)
    centres = rng.standard_normal((96, args.dim)).astype(np.float32)
    feats = centres[[it[1] for it in items]] + 3.0 * rng.standard_normal(
        (len(items), args.dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)  # as the evaluator ranks them
    cpu = time.process_time()
    start = time.perf_counter()
    tasks = sysu_tasks(items, num_query)
    t_draws = time.perf_counter() - start
    # as the evaluator and the tool transfer: a branch's trials from one neighbour search
    pooled = numpy_pool_transfer(GraphSettings(), TransferSettings(mode=args.transfer))

    def score(transfer_fn):
        if args.top_r:
            return run_tasks_top_r(lambda b: feats, items, tasks, lambda b: protocol_retrieval(
                transfer_fn, b, args.backend), args.top_r)
        return run_tasks(lambda b: feats, items, tasks, protocol_distances(transfer_fn))

    sizes = {t.name: len(t.trials[0][1]) for t in tasks}
    start = time.perf_counter()
    cift = score(pooled)
    t_cift = time.perf_counter() - start
    start = time.perf_counter()
    plain = score(None)
    t_plain = time.perf_counter() - start
    cpu = time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"queries={num_query} gallery sizes={sizes} dim={args.dim} transfer={args.transfer} "
          f"top_r={args.top_r or 'off'} threads={torch.get_num_threads()} "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"gallery draws {t_draws:.1f} s | CIFT (transfer + protocol) {t_cift:.1f} s | "
          f"CIFT† (protocol) {t_plain:.1f} s | total {t_draws + t_cift + t_plain:.1f} s "
          f"({cpu:.1f} s CPU) | "
          f"peak RSS {rss:.0f} MiB")
    r1 = (cift["all-single"]["R1"], plain["all-single"]["R1"])
    print(f"all-single R1: CIFT {r1[0]:.1f}, CIFT† {r1[1]:.1f}")


if __name__ == "__main__":
    main()

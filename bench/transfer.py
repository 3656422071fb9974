#!/usr/bin/env python
"""Time and peak memory of the test-time transfer: the authors' dense (Q+G)x(Q+G) graph vs the
neighbour-list (sparse) one, at Q+G = 7k, 20k and 100k nodes (half queries, half gallery).

    .venv/bin/python bench/transfer.py [--sizes 7000 20000 100000] [--dim 2048]

Each measurement runs in its own process so that its peak RSS is its own, after a small warm-up
call (library start-up is not timed). Dense and sparse alternate for --rounds rounds (one above
20k nodes), so that a shared machine's changing speed touches both alike; each round's ratio
and their median are printed. The dense graph is skipped where its (Q+G)^2 float32 matrices
cannot fit in this machine's memory.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))

# The dense path holds a few (Q+G)^2 float32 matrices at once (similarities, weights, A).
DENSE_MATRICES = 4


def measure(n: int, dim: int, method: str, backend: str) -> dict:
    from cift.modeling.graph import GraphSettings
    from cift.modeling.transfer import test_time_transfer

    def run(g: torch.Tensor, q: torch.Tensor) -> None:
        test_time_transfer(g, q, GraphSettings(), form=method, backend=backend)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run(torch.randn(64, dim, device=device), torch.randn(64, dim, device=device))  # warm-up
    g = torch.randn(n // 2, dim, device=device)
    q = torch.randn(n - n // 2, dim, device=device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run(g, q)
    out = {"seconds": time.perf_counter() - start,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[7000, 20000, 100000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--backend", default="torch", choices=["torch", "faiss"])
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating dense/sparse rounds per size (one above 20k nodes)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # child: N METHOD
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.dim, args.one[1], args.backend)))
        return
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"dim={args.dim} backend={args.backend} threads={torch.get_num_threads()} "
          f"device={'cuda' if torch.cuda.is_available() else 'cpu'} "
          f"memory={memory / 2**30:.0f} GiB")
    for n in args.sizes:
        methods = ["dense", "sparse"]
        skipped = DENSE_MATRICES * 4 * n * n > 0.8 * memory
        if skipped:
            methods.remove("dense")
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for _ in range(args.rounds if n <= 20_000 else 1):
            for method in methods:
                cmd = [sys.executable, __file__, "--one", str(n), method, "--dim", str(args.dim),
                       "--backend", args.backend]
                runs[method].append(json.loads(subprocess.run(
                    cmd, capture_output=True, text=True, check=True).stdout))
        row: dict = {}
        for method, rs in runs.items():
            row[method] = {"seconds": [round(r["seconds"], 2) for r in rs]}
            for key in ("peak_rss_mib", "cuda_max_allocated_mib"):
                if key in rs[0]:
                    row[method][key] = round(max(r[key] for r in rs))
        if skipped:
            row["dense"] = "skipped: (Q+G)^2 matrices do not fit"
        else:
            pairs = zip(runs["dense"], runs["sparse"], strict=True)
            ratios = [d["seconds"] / s["seconds"] for d, s in pairs]
            row["speed-up per round"] = [round(r, 1) for r in ratios]
            row["median speed-up"] = round(statistics.median(ratios), 1)
        print(f"Q+G={n}: {json.dumps(row)}", flush=True)


if __name__ == "__main__":
    main()

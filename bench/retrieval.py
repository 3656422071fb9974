#!/usr/bin/env python
"""Time and peak memory of one SYSU-protocol evaluation on a large gallery: the full ranking
(a (Q, G) float64 −q·gᵀ matrix, as the evaluator ranks raw features, argsort) vs top-R lists
(TEST.RETRIEVAL.TOP_R), from random unit features of identities with `--per-id` images each.

    .venv/bin/python bench/retrieval.py [--queries 5000] [--gallery 100000] [--dim 2048]
                                        [--top-r 100] [--backend torch|faiss]

Each method runs in its own process so that its peak RSS is its own. Infrared queries (cameras
3, 6) against visible gallery images (cameras 1, 2, 4, 5): camera-3 queries drop camera 2.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))


def problem(args) -> tuple[np.ndarray, ...]:
    """Unit features, identities and cameras of queries and gallery."""
    rng = np.random.default_rng(0)
    num_ids = args.gallery // args.per_id
    centres = rng.standard_normal((num_ids, args.dim)).astype(np.float32)
    g_pids = np.repeat(np.arange(num_ids), args.per_id)[:args.gallery]
    q_pids = rng.integers(0, num_ids, args.queries)
    g_cams = rng.choice([1, 2, 4, 5], g_pids.size)
    q_cams = rng.choice([3, 6], q_pids.size)

    def features(pids):
        x = centres[pids] + args.noise * rng.standard_normal((pids.size, args.dim),
                                                              dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    return features(q_pids), features(g_pids), q_pids, g_pids, q_cams, g_cams


def measure(args, method: str) -> dict:
    import torch

    from cift.evaluation.distances import RAW_DTYPE, negative_inner_product
    from cift.evaluation.protocols import evaluate_sysu, evaluate_sysu_top_r
    from cift.evaluation.retrieval import feature_search

    q, g, q_pids, g_pids, q_cams, g_cams = problem(args)
    start = time.perf_counter()
    if method == "full":
        dist = negative_inner_product(q.astype(RAW_DTYPE), g.astype(RAW_DTYPE))
        cmc, m_ap, _ = evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)
    else:
        cmc, m_ap = evaluate_sysu_top_r(feature_search(q, g, args.backend), args.top_r,
                                        q_pids, g_pids, q_cams, g_cams)
    return {"seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "R1": round(100 * float(cmc[0]), 2), "R20": round(100 * float(cmc[-1]), 2),
            "mAP" if method == "full" else f"mAP@{args.top_r}": round(100 * m_ap, 2),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--per-id", type=int, default=10)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--noise", type=float, default=4.0, help="noise / identity centre scale")
    parser.add_argument("--top-r", type=int, default=100)
    parser.add_argument("--backend", choices=["torch", "faiss"], default="torch")
    parser.add_argument("--methods", nargs="+", default=["full", "top-r"],
                        choices=["full", "top-r"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: METHOD
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args, args.one)))
        return
    print(f"queries={args.queries} gallery={args.gallery} dim={args.dim} top_r={args.top_r} "
          f"backend={args.backend}", flush=True)
    forwarded = sys.argv[1:]
    for method in args.methods:
        out = subprocess.run([sys.executable, __file__, *forwarded, "--one", method],
                             capture_output=True, text=True, check=True).stdout
        print(f"{method}: {out.strip()}", flush=True)


if __name__ == "__main__":
    main()

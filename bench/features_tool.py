#!/usr/bin/env python
"""Time of tools/evaluate_features.py on a SYSU-MM01-sized features file: the full protocol (4
settings x 10 trials), raw and with the test-time transfer, and the two forms of the transfer
(dense query rows in chunks vs neighbour lists) at the protocol's graph sizes, which set
TEST.TRANSFER.SPARSE_ABOVE.

    .venv/bin/python bench/features_tool.py [--dim 2048] [--rounds 3] [--threads N]
                                            [--part all|tool|forms]

The file holds random features (identity centres plus noise, L2-normalised, float32) of 3,803
queries and a 3,612-image visible pool (the galleries of bench/protocol.py: 301 / 3,010
all-search and 112 / 1,120 indoor images per trial). The command runs in a fresh process,
timed whole (start-up and import included) and as the tool's own scoring, in wall-clock and
CPU seconds: on a busy machine the CPU time of a one-thread run (--threads 1) bounds its
wall-clock time on an idle one. The transfer forms alternate for --rounds rounds, so that a
shared machine's changing speed touches both alike.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))
sys.path.insert(0, str(ROOT / "bench"))

from protocol import sysu_sized_items  # noqa: E402

TOOL = ROOT / "projects" / "CIFT" / "tools" / "evaluate_features.py"
# (queries, gallery) of the transfer graphs measured: SYSU-MM01's four galleries against its
# 3,803 queries, RegDB's 2,060 x 2,060, and small graphs
GRAPHS = ((3803, 112), (3803, 301), (3803, 1120), (3803, 3010), (2060, 2060), (200, 50),
          (500, 500))


def write_file(path: Path, dim: int) -> None:
    """A SYSU-MM01-sized features file of random, identity-clustered unit features."""
    from cift.evaluation.features_file import features_record, write_features_file

    rng = np.random.default_rng(0)
    items, num_query = sysu_sized_items(rng)
    centres = rng.standard_normal((96, dim)).astype(np.float32)
    feats = centres[[it[1] for it in items]] + 3.0 * rng.standard_normal(
        (len(items), dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    items = [("/SYSU-MM01/" + path, *rest) for path, *rest in items]
    write_features_file(path, features_record({"feats": feats}, items, num_query, "/SYSU-MM01",
                                              "SYSU-MM01", "SYSUMM01"))


def time_tool(path: Path, out: Path, threads: int) -> dict:
    """Whole-command and scoring times (wall, CPU) of `evaluate_features.py FILE --transfer`."""
    code = (f"import sys, time; sys.argv = ['x']; sys.path.insert(0, {str(TOOL.parent)!r})\n"
            "import evaluate_features as tool\n"
            "start, cpu = time.perf_counter(), time.process_time()\n"
            f"rc = tool.run([{str(path)!r}, '--transfer', '--out', {str(out)!r},"
            f" '--data-root', {str(out)!r}])\n"
            "print('SCORING', time.perf_counter() - start, time.process_time() - cpu, rc)\n")
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                     "MKL_NUM_THREADS")})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    whole = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    _, wall, scoring_cpu, _ = next(line for line in done.stdout.splitlines()
                                   if line.startswith("SCORING")).split()
    results = json.loads((out / "protocol_results.json").read_text())["SYSUMM01"]
    return {"whole_wall_s": round(whole, 1), "whole_cpu_s": round(cpu, 1),
            "scoring_wall_s": round(float(wall), 1), "scoring_cpu_s": round(float(scoring_cpu), 1),
            "R1 raw/transfer all-single": [round(results[m]["all-single"]["R1"], 2)
                                           for m in ("raw", "transfer")]}


def time_forms(dim: int, rounds: int) -> None:
    """Chunked (dense) vs neighbour-list transfer at each of GRAPHS."""
    import torch

    from cift.modeling.graph import GraphSettings
    from cift.modeling.transfer import test_time_transfer

    settings = GraphSettings()
    test_time_transfer(torch.randn(64, dim), torch.randn(64, dim), settings)  # warm-up
    for num_q, num_g in GRAPHS:
        torch.manual_seed(0)
        g, q = torch.randn(num_g, dim), torch.randn(num_q, dim)
        times = {"chunked": [], "sparse": []}
        for _ in range(rounds):
            for form in times:
                start = time.perf_counter()
                test_time_transfer(g, q, settings, form=form)
                times[form].append(time.perf_counter() - start)
        ratios = [c / s for c, s in zip(times["chunked"], times["sparse"], strict=True)]
        print(f"Q={num_q} G={num_g} ({num_q + num_g} nodes): "
              + json.dumps({form: [round(t, 3) for t in ts] for form, ts in times.items()})
              + f" chunked/sparse median {statistics.median(ratios):.1f}x", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of the timed command (0: the libraries' default)")
    parser.add_argument("--part", choices=["all", "tool", "forms"], default="all",
                        help="the tool, the transfer forms, or both")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"dim={args.dim} threads={torch.get_num_threads()} "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.part != "forms":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "features_SYSUMM01.npz"
            write_file(path, args.dim)
            timing = time_tool(path, Path(tmp), args.threads)
            print(f"evaluate_features.py FILE --transfer: {json.dumps(timing)}", flush=True)
    if args.part != "tool":
        time_forms(args.dim, args.rounds)


if __name__ == "__main__":
    main()

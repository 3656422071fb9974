#!/usr/bin/env python
"""The toy experiment of the CIFT supplementary (§1, Fig. 1): Q_Y of Y = A·X over Q_X x Q_A.

    python projects/CIFT/tools/toy_topology.py --out logs/toy_topology
    python projects/CIFT/tools/toy_topology.py --out DIR --reps 100 --grid 11 --seed 0

Writes to DIR: toy_topology.csv (the Q_X x Q_A grid), toy_topology_line.csv (a finer Q_A sweep
at the fixed Q_X of --fixed-qx, the supplementary's yellow line), toy_topology_heatmap.png,
toy_topology_surface.png and summary.json (settings and the two observations), and prints the
summary. Its progress shows on stderr (cift.progress: a bar on a terminal, else a line every
half minute). The generator is documented in cift.analysis.toy_experiment and docs/topology.md.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from cift.analysis.plots import plot_toy_heatmap, plot_toy_surface  # noqa: E402
from cift.analysis.toy_experiment import (  # noqa: E402
    GOOD_Q_Y,
    ToySettings,
    run_toy,
    settings_dict,
    summarise_observations,
    write_csv,
)
from cift.arguments import (  # noqa: E402
    COUNT,
    PROBABILITY,
    SEED,
    key_flag,
    kind_flag,
    one_line_errors,
    output_folder,
)
from cift.atomic import atomic_write_json  # noqa: E402
from cift.config_schema import Int  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402

AT_LEAST_2 = kind_flag(Int(2))


def parse_args(argv=None) -> argparse.Namespace:
    p = one_line_errors(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    p.add_argument("--out", type=output_folder, required=True, help="output folder")
    p.add_argument("--reps", type=COUNT, default=100, help="repetitions averaged (default 100)")
    p.add_argument("--grid", type=AT_LEAST_2, default=11,
                   help="targets per axis: Q_X and Q_A in linspace(0, 1, GRID) (default 11)")
    p.add_argument("--seed", type=SEED, default=0, help="base seed (default 0)")
    p.add_argument("--fixed-qx", type=PROBABILITY, default=0.57,
                   help="Q_X of the fine Q_A sweep (default 0.57, the baseline value the "
                        "supplementary quotes)")
    p.add_argument("--line-points", type=AT_LEAST_2, default=41,
                   help="Q_A targets of the fine sweep, linspace(0, 1, N) (default 41)")
    p.add_argument("--low-qa", type=PROBABILITY, default=0.1,
                   help="Q_A of the low-affinity observation (default 0.1)")
    p.add_argument("--num-ids", type=AT_LEAST_2, default=ToySettings.num_ids)
    p.add_argument("--per-id", type=AT_LEAST_2, default=ToySettings.per_id,
                   help="samples per identity (>= 2: a sample needs a positive)")
    p.add_argument("--dim", type=COUNT, default=ToySettings.dim)
    # the toy graph's temperature and neighbours, constrained as the model's
    p.add_argument("--tau", type=key_flag("MODEL.CIFT.TAU_HOM"), default=ToySettings.tau)
    p.add_argument("--k", type=key_flag("MODEL.CIFT.TOPK"), default=ToySettings.k)
    args = p.parse_args(argv)
    if args.k > args.num_ids * args.per_id:
        p.error(f"argument --k: {args.k}: expected at most the toy graph's nodes, --num-ids x "
                f"--per-id = {args.num_ids * args.per_id}")
    return args


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except CiftInputError as err:
        return print_input_error(err)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = ToySettings(num_ids=args.num_ids, per_id=args.per_id, dim=args.dim,
                           tau=args.tau, k=args.k)
    targets = np.linspace(0.0, 1.0, args.grid)
    # the first line at once: the two passes take minutes at the defaults (progress on stderr)
    print(f"toy experiment: {args.reps} repetitions of a {args.grid} x {args.grid} (Q_X, Q_A) "
          f"grid, then of a {args.line_points}-point Q_A line at Q_X = {args.fixed_qx}; files "
          f"go to {out}", flush=True)
    start = time.perf_counter()
    grid = run_toy(targets, targets, reps=args.reps, seed=args.seed, settings=settings)
    line = run_toy([args.fixed_qx], np.linspace(0.0, 1.0, args.line_points), reps=args.reps,
                   seed=args.seed, settings=settings)
    seconds = time.perf_counter() - start
    write_csv(grid, out / "toy_topology.csv")
    write_csv(line, out / "toy_topology_line.csv")
    plot_toy_heatmap(targets, targets, grid.qy_mean, out / "toy_topology_heatmap.png",
                     level=GOOD_Q_Y, low_qa=args.low_qa, fixed_qx=args.fixed_qx)
    plot_toy_surface(targets, targets, grid.qy_mean, out / "toy_topology_surface.png")
    observations = summarise_observations(grid, line, low_qa=args.low_qa)
    summary = {"settings": settings_dict(settings), "reps": args.reps, "grid": args.grid,
               "seed": args.seed, "fixed_qx": args.fixed_qx, "seconds": round(seconds, 1),
               "observations": observations}
    atomic_write_json(str(out / "summary.json"), summary)
    o = observations
    threshold = o["line_qa_threshold"][f"{args.fixed_qx:.3f}"]
    print(f"{args.reps} repetitions of a {args.grid} x {args.grid} grid in {seconds:.0f} s; "
          f"files in {out}")
    print(f"1. Q_A ~ {o['low_qa_reached']:.3f} (target {o['low_qa_target']:.2f}): Q_Y = "
          f"{o['low_qa_qy_at_max_qx']:.3f} at Q_X = {o['low_qa_max_qx_reached']:.3f}; Q_Y >= "
          f"{GOOD_Q_Y} from Q_X = {o['low_qa_qx_for_good_qy']:.3f}")
    print(f"2. at Q_X = {args.fixed_qx}: Q_Y >= {GOOD_Q_Y} from Q_A = {threshold:.3f} "
          "(supplementary: 0.16)")
    for qx, qa in o["qa_threshold_by_qx"].items():
        print(f"   Q_X = {qx}: Q_Y >= {GOOD_Q_Y} from Q_A = {qa:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

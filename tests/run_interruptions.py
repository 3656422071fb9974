#!/usr/bin/env python
"""All nine interruption cases: kill -9, SIGTERM and SIGINT, each before the first checkpoint,
mid-epoch and right after a checkpoint, then --resume; each must repeat the uninterrupted
run's raw losses, final weights and optimizer state, results and metrics.json (bar wall-clock
keys). tests/engine/test_resume.py runs three of them; this script (minutes on a CPU) runs all
and prints one line per case:

    PYTHONPATH=projects/CIFT python tests/run_interruptions.py [--workers N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cift  # noqa: E402, F401

# isort: split
from cift.data.synthetic import ensure_synthetic_sysu  # noqa: E402
from helpers.interruptions import (  # noqa: E402
    POINTS,
    SIGNALS,
    interrupt_and_resume,
    uninterrupted,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="DATALOADER.NUM_WORKERS")
    args = parser.parse_args(argv)
    extra = ("DATALOADER.NUM_WORKERS", str(args.workers))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        datasets = base / "datasets"
        ensure_synthetic_sysu(datasets / "SyntheticVI", num_ids=12, images_per_camera=10,
                              test_ids=4, val_ids=2, seed=0)
        full = uninterrupted(base / "full", datasets, *extra)
        for signal_name in SIGNALS:
            for point in POINTS:
                start = time.time()
                try:
                    interrupt_and_resume(full, base / f"{signal_name}-{point}", datasets,
                                         signal_name, point, *extra)
                    outcome = "identical"
                except AssertionError as err:
                    failed += 1
                    outcome = f"DIFFERENT ({(str(err) or 'an assertion').splitlines()[0][:200]})"
                print(f"SIG{signal_name:4s} {point:24s} {outcome} ({time.time() - start:.0f} s)",
                      flush=True)
    print(f"{9 - failed} of 9 cases identical to the uninterrupted run "
          f"(DATALOADER.NUM_WORKERS {args.workers})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

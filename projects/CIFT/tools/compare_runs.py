#!/usr/bin/env python
"""Print the protocol results of finished runs side by side.

    python projects/CIFT/tools/compare_runs.py baseline=logs/demo/baseline logs/demo/cift

Each argument is a run's OUTPUT_DIR, optionally prefixed with a label (default: the folder
name). Every run keeps its own columns under its label: a baseline's `LABEL`, a CIFT run's
`LABEL` (transferred features, CIFT) and `LABEL†` (BNNeck features, CIFT†).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from cift.arguments import one_line_errors  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402
from cift.evaluation.report import compare_table, load_run_results  # noqa: E402


def main(argv=None) -> int:
    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("runs", nargs="+", help="[LABEL=]OUTPUT_DIR of a finished run")
    try:
        args = parser.parse_args(argv)
    except CiftInputError as err:
        return print_input_error(err)
    runs = {}
    for spec in args.runs:
        label, _, path = spec.rpartition("=")
        label = label or Path(path).resolve().name
        if label in runs:
            return print_input_error(CiftInputError(
                f"{spec}: the label {label!r} is already taken by another run; "
                "give each run its own as LABEL=DIR"))
        try:
            runs[label] = load_run_results(path)
        except CiftInputError as err:
            return print_input_error(err)
    datasets = list(dict.fromkeys(d for results in runs.values() for d in results))
    for dataset in datasets:
        present = {name: r for name, r in runs.items() if dataset in r}
        print(f"\n{dataset} (mean ± std over trials, %)\n{compare_table(present, dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Print the protocol results of finished runs side by side.

    python projects/CIFT/tools/compare_runs.py baseline=logs/demo/baseline logs/demo/cift
    python projects/CIFT/tools/compare_runs.py baseline=DIR CIFT=DIR --json F.json --markdown F.md

Each argument is a run's OUTPUT_DIR, optionally prefixed with a label (default: the folder
name). Every run keeps its own columns under its label: a baseline's `LABEL`, a CIFT run's
`LABEL` (transferred features, CIFT) and `LABEL†` (BNNeck features, CIFT†). --json writes the
comparison as data (with the date, the machine and each run's seed, device and trials),
--markdown as Markdown tables with every column's margins over the first run's; the README's
demo table is generated from such a JSON file (tools/demo_tables.py).
"""
import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from cift.arguments import one_line_errors  # noqa: E402
from cift.atomic import atomic_write, atomic_write_json  # noqa: E402
from cift.comparison import comparison_data, comparison_markdown, margin_table  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402
from cift.evaluation.report import compare_table, load_run_results  # noqa: E402


def main(argv=None) -> int:
    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("runs", nargs="+", help="[LABEL=]OUTPUT_DIR of a finished run")
    parser.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write it as Markdown")
    try:
        args = parser.parse_args(argv)
    except CiftInputError as err:
        return print_input_error(err)
    runs, dirs = {}, {}
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
        dirs[label] = path
    command = shlex.join(["compare_runs.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        data = comparison_data(runs, dirs, command=command)
    except CiftInputError as err:
        return print_input_error(err)
    reference = next(iter(runs))
    for dataset, table in data["tables"].items():
        present = {name: r for name, r in runs.items() if dataset in r}
        print(f"\n{dataset} (mean ± std over trials, %)\n{compare_table(present, dataset)}")
        if len(table["columns"]) > 1 and reference in table["columns"]:
            print(f"\nmargins over {reference} (points; 2σ: twice the larger std; ✓: beyond "
                  f"it)\n{margin_table(table, reference)}")
    if args.json:
        atomic_write_json(args.json, data)
    if args.markdown:
        text = comparison_markdown(data) + "\n"
        atomic_write(args.markdown, lambda f: f.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Make the data sets a config names ready before training: generate SyntheticVI, check the
others' folders.

    python projects/CIFT/tools/prepare_data.py --config-file configs/Demo/baseline_synthetic.yml

`make demo` runs it first, so that its two training runs, started side by side, find the data
set made once rather than both generating it. Data sets live under $FASTREID_DATASETS
(default: datasets/), as in training.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from cift.arguments import tool_parser  # noqa: E402
from cift.config import load_config  # noqa: E402
from cift.data.build import load_dataset  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402


def main(argv=None) -> int:
    parser = tool_parser(__doc__)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    try:
        args = parser.parse_args(argv)
        cfg = load_config(args.config_file, args.opts)
        for name in dict.fromkeys((*cfg.DATASETS.NAMES, *cfg.DATASETS.TESTS)):
            load_dataset(cfg, name)
            print(f"{name}: ready")
    except CiftInputError as err:
        return print_input_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Train and evaluate on every RegDB split (1..10), then aggregate mean ± std over splits.

    python projects/CIFT/tools/run_regdb_trials.py --config-file configs/RegDB/cift_R50.yml
    python projects/CIFT/tools/run_regdb_trials.py --config-file FILE --splits 1,2,3 KEY VALUE

Split s runs `train_net.py` with DATASETS.REGDB.SPLIT s and OUTPUT_DIR <OUTPUT_DIR>/trial_<s>
(the folder and file names are kept so that earlier runs resume). A finished split (its
protocol_results.json and model_final.pth exist) is never run again; an interrupted one resumes
from its last checkpoint. The summary goes to the console and to
<OUTPUT_DIR>/regdb_trials.json.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without install

from cift.arguments import key_flag, one_line_errors  # noqa: E402
from cift.atomic import atomic_write_json  # noqa: E402
from cift.config import keys_set, load_config  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402
from cift.evaluation.report import (  # noqa: E402
    RESULTS_FILE,
    format_protocol_table,
    reported_metrics,
)

SUMMARY_FILE = "regdb_trials.json"


SPLIT = key_flag("DATASETS.REGDB.SPLIT")


def parse_splits(text: str) -> list[int]:
    """'1,2,5' -> [1, 2, 5], each a DATASETS.REGDB.SPLIT (1..10); argparse `type` of --splits."""
    splits = [SPLIT(t.strip()) for t in text.split(",") if t.strip()]
    if not splits:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated splits in 1..10")
    return list(dict.fromkeys(splits))


def split_state(out: Path) -> str:
    """'done', 'interrupted' (a checkpoint, no final results) or 'new'."""
    if (out / RESULTS_FILE).is_file() and (out / "model_final.pth").is_file():
        return "done"
    return "interrupted" if (out / "last_checkpoint").is_file() else "new"


def run_split(config: str, split: int, out: Path, opts: list[str], resume: bool) -> None:
    cmd = [sys.executable, str(HERE.parent / "train_net.py"), "--config-file", config,
           *(["--resume"] if resume else []), *opts,
           "DATASETS.REGDB.SPLIT", str(split), "OUTPUT_DIR", str(out)]
    print(f"== split {split}: {'resuming' if resume else 'training'} in {out}", flush=True)
    subprocess.run(cmd, check=True)


def aggregate(per_split: dict[int, dict]) -> dict:
    """Mean and std over splits of every split's mean metric, nested like one split's results."""
    def walk(results: list[dict]) -> dict:
        first, out = results[0], {}
        for key, value in first.items():
            if isinstance(value, dict) and "R1" in value:
                out[key] = {}
                for name in reported_metrics(value):
                    values = np.asarray([r[key][name] for r in results])
                    out[key][name] = float(values.mean())
                    out[key][name + "_std"] = float(values.std())
            elif isinstance(value, dict):
                out[key] = walk([r[key] for r in results])
        return out
    return walk([r["RegDB"] for r in per_split.values()])


def main(argv=None) -> int:
    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--splits", type=parse_splits, default=list(range(1, 11)),
                        help="comma-separated split numbers (default: all ten)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    try:
        args = parser.parse_args(argv)
        cfg = load_config(args.config_file, args.opts)
        splits = args.splits
        if tuple(cfg.DATASETS.TESTS) != ("RegDB",):
            raise CiftInputError(f"{args.config_file}: DATASETS.TESTS {tuple(cfg.DATASETS.TESTS)}"
                                 ": expected ('RegDB',)")
        if "DATASETS.REGDB.SPLIT" in keys_set("", args.opts):
            raise CiftInputError("DATASETS.REGDB.SPLIT: set for each split by this tool; choose "
                                 "the splits with --splits")
    except CiftInputError as err:
        return print_input_error(err)
    base = Path(cfg.OUTPUT_DIR)
    per_split = {}
    for split in splits:
        out = base / f"trial_{split}"
        state = split_state(out)
        if state != "done":
            try:
                run_split(args.config_file, split, out, args.opts, resume=state == "interrupted")
            except subprocess.CalledProcessError as err:
                if err.returncode == 2:  # its input was refused: train_net printed the one line
                    return 2
                print(f"error: split {split} failed (exit {err.returncode}); rerun to resume",
                      file=sys.stderr)
                return 1
        per_split[split] = json.loads((out / RESULTS_FILE).read_text())
    # "trials" is the summary's key for the splits run (kept for earlier readers of the file)
    summary = {"trials": sorted(per_split), "RegDB": aggregate(per_split)}
    base.mkdir(parents=True, exist_ok=True)
    atomic_write_json(str(base / SUMMARY_FILE), summary)
    print(format_protocol_table(summary["RegDB"], title=f"RegDB, splits {summary['trials']} "
                                "(mean ± std over splits, %)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

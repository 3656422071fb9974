"""Side-by-side comparison of protocol results from several runs (e.g. the demo's two)."""
from __future__ import annotations

import json
from pathlib import Path

from .sysu_runs import protocol_rows

RESULTS_FILE = "protocol_results.json"


def load_run_results(run_dir: str | Path) -> dict:
    """The last evaluation of a run: `<run_dir>/protocol_results.json`, keyed by test set."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation results (has the run finished?)")
    return json.loads(path.read_text())


def method_rows(name: str, results: dict) -> dict[str, dict[str, dict]]:
    """{method: {setting: metrics}}: a baseline's settings under `name`, a CIFT run's under
    "CIFT" and "CIFT†"."""
    methods: dict[str, dict[str, dict]] = {}
    for label, metrics in protocol_rows(results):
        method, _, setting = label.rpartition(" ")
        methods.setdefault(method or name, {})[setting] = metrics
    return methods


def compare_table(runs: dict[str, dict], dataset: str, metrics=("R1", "mAP", "mINP")) -> str:
    """One row per setting, `metric` mean ± std per method of every run, for one test set."""
    from tabulate import tabulate

    methods: dict[str, dict[str, dict]] = {}
    for name, results in runs.items():
        methods.update(method_rows(name, results[dataset]))
    settings = list(dict.fromkeys(s for rows in methods.values() for s in rows))
    headers = ["setting"] + [f"{m} {x}" for m in methods for x in metrics]
    table = [[s] + [f"{rows[s][x]:.1f} ± {rows[s][x + '_std']:.1f}" if s in rows else "-"
                    for rows in methods.values() for x in metrics] for s in settings]
    return tabulate(table, headers=headers, tablefmt="pipe")

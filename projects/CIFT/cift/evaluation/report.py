"""Side-by-side comparison of protocol results from several runs (e.g. the demo's two)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CiftInputError
from .vi_evaluator import TRANSFERRED

RESULTS_FILE = "protocol_results.json"
# compare_table's default columns where the runs report them, and any mAP@R (top-R retrieval).
COMPARED = ("R1", "mAP", "mINP")


def reported_metrics(metrics: dict) -> list[str]:
    """The metrics of one setting's results, in order, without their "_std" companions."""
    return [name for name in metrics if not name.endswith("_std")]


def protocol_rows(results: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """(label, metrics) for every setting in possibly nested results ("CIFT all-single")."""
    rows = []
    for key, value in results.items():
        if isinstance(value, dict):
            label = prefix + (key,)
            rows += [(" ".join(label), value)] if "R1" in value else protocol_rows(value, label)
    return rows


def saturated_ranks(settings: list[tuple[str, dict]]) -> list[str]:
    """The CMC ranks ("R20", ...) at 100 ± 0 in every setting of `protocol_rows` output."""
    names = reported_metrics(settings[0][1]) if settings else []
    return [n for n in names if n[:1] == "R" and n[1:].isdigit()
            and all(m[n] == 100.0 and m[n + "_std"] == 0.0 for _, m in settings)]


def format_protocol_table(results: dict, title: str = "") -> str:
    """A plain-text table: one row per setting, 'mean ± std' per metric; under it, a note on
    the CMC ranks at 100 everywhere (a gallery of that many identities or fewer)."""
    from tabulate import tabulate

    settings = protocol_rows(results)
    names = reported_metrics(settings[0][1]) if settings else []
    rows = [[label] + [f"{m[name]:.2f} ± {m[name + '_std']:.2f}" for name in names]
            for label, m in settings]
    table = tabulate(rows, headers=["setting", *names], tablefmt="pipe")
    full = saturated_ranks(settings)
    if full:
        k = full[0][1:]
        table += (f"\n{' = '.join(full)} = 100 in every setting: each query's identity is "
                  f"among its first {k} gallery identities, as always when the gallery holds "
                  f"{k} identities or fewer (identity-level CMC).")
    return f"{title}\n{table}" if title else table


def load_run_results(run_dir: str | Path) -> dict:
    """The last evaluation of a run: `<run_dir>/protocol_results.json`, keyed by test set.

    Raises:
        CiftInputError: naming the file, when it is missing, not UTF-8 JSON, or not results
            ({test set: {...: {setting: {"R1": number, ...}}}}, every value a number).
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise CiftInputError(f"{path}: no evaluation results (has the run finished?)")
    try:
        results = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CiftInputError(f"{path}: not UTF-8 JSON ({err})") from None
    if not (isinstance(results, dict) and results
            and all(isinstance(v, dict) and protocol_rows(v) for v in results.values())):
        raise CiftInputError(f"{path}: not protocol results (expected {{test set: {{setting: "
                             "{R1: number, ...}}}, as a run writes it)")
    bad = _first_non_number(results)
    if bad:
        raise CiftInputError(f"{path}: {bad[0]}: {bad[1]!r} is not a number")
    return results


def _first_non_number(node: dict, where: str = "") -> tuple[str, object] | None:
    """(key path, value) of the first leaf of nested `node` that is not an int or float."""
    for key, value in node.items():
        name = f"{where}/{key}" if where else str(key)
        if isinstance(value, dict):
            found = _first_non_number(value, name)
            if found:
                return found
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return name, value
    return None


def method_column(name: str, method: str) -> str:
    """The column label of one method of the run labelled `name`: the run's own ranking
    (a baseline's features, CIFT's transferred ones) is `name`, CIFT† (no transfer) `name†`,
    any other method `name method`."""
    if not method or method == TRANSFERRED:
        return name
    if method.startswith(TRANSFERRED):
        return name + method[len(TRANSFERRED):]
    return f"{name} {method}"


def method_rows(name: str, results: dict) -> dict[str, dict[str, dict]]:
    """{column: {setting: metrics}} of one run labelled `name` (see :func:`method_column`)."""
    methods: dict[str, dict[str, dict]] = {}
    for label, metrics in protocol_rows(results):
        method, _, setting = label.rpartition(" ")
        methods.setdefault(method_column(name, method), {})[setting] = metrics
    return methods


def compare_columns(runs: dict[str, dict], dataset: str) -> dict[str, dict[str, dict]]:
    """{column: {setting: metrics}} of every run on one test set: each run keeps its own
    columns, labelled by its key in `runs` (two runs whose columns would share a label raise
    ValueError)."""
    methods: dict[str, dict[str, dict]] = {}
    for name, results in runs.items():
        for column, rows in method_rows(name, results[dataset]).items():
            if column in methods:
                raise ValueError(f"two runs give the column {column!r}: label them apart")
            methods[column] = rows
    return methods


def compared_metrics(methods: dict[str, dict[str, dict]]) -> list[str]:
    """compare_table's default metrics: R1, mAP or mAP@R, mINP, where every column reports
    them."""
    reported = [reported_metrics(m) for rows in methods.values() for m in rows.values()]
    common = [n for n in (reported or [[]])[0] if all(n in names for names in reported)]
    return [n for n in common if n in COMPARED or n.startswith("mAP@")]


def compare_table(runs: dict[str, dict], dataset: str, metrics=None) -> str:
    """One row per setting, `metrics` (default: :func:`compared_metrics`) mean ± std per
    method of every run, for one test set (columns from :func:`compare_columns`)."""
    from tabulate import tabulate

    methods = compare_columns(runs, dataset)
    if metrics is None:
        metrics = compared_metrics(methods)
    settings = list(dict.fromkeys(s for rows in methods.values() for s in rows))
    headers = ["setting"] + [f"{m} {x}" for m in methods for x in metrics]
    table = [[s] + [f"{rows[s][x]:.1f} ± {rows[s][x + '_std']:.1f}" if s in rows else "-"
                    for rows in methods.values() for x in metrics] for s in settings]
    return tabulate(table, headers=headers, tablefmt="pipe")

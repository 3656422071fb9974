"""A comparison of finished runs as data (JSON) and as Markdown, with the margins of every
column over the first run's: what `compare_runs.py --json/--markdown` writes, what the README's
demo table is generated from (`tools/demo_tables.py`), and what docs/demo.md's seed tables and
their summary over seeds are.

The data, for each test set: the metrics compared, the columns (each run's own and, for a
CIFT run, its "†" column) and, per setting, per column, per metric, [mean, std] over the
protocol's trials. A margin is the difference of two columns' means beside twice the larger of
their standard deviations: a difference beyond it is not a matter of which gallery images a
trial drew.
"""
from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path

from .errors import CiftInputError
from .evaluation.report import compare_columns, compared_metrics

__all__ = ["FORMAT", "RUN_FACTS", "comparison_data", "comparison_markdown", "machine", "margin",
           "margin_cell", "margin_table", "mean_std_table", "run_facts", "seeds_markdown"]

FORMAT = 1
CONFIG_FILE = "config.yaml"  # written by fastreid's default_setup into every run's folder


def comparison_tables(runs: dict[str, dict], metrics=None) -> dict[str, dict]:
    """{test set: {"metrics", "columns", "rows": {setting: {column: {metric: [mean, std]}}}}}
    for every test set of `runs` ({label: protocol results}), in the order the runs list them."""
    tables = {}
    datasets = list(dict.fromkeys(d for results in runs.values() for d in results))
    for dataset in datasets:
        present = {name: r for name, r in runs.items() if dataset in r}
        columns = compare_columns(present, dataset)
        names = list(metrics) if metrics else compared_metrics(columns)
        settings = list(dict.fromkeys(s for rows in columns.values() for s in rows))
        tables[dataset] = {
            "metrics": names,
            "columns": list(columns),
            "rows": {s: {c: {m: [round(rows[s][m], 2), round(rows[s][m + "_std"], 2)]
                             for m in names}
                         for c, rows in columns.items() if s in rows}
                     for s in settings}}
    return tables


def machine() -> str:
    """The CPU model, its core count and the torch build, e.g. "AMD EPYC, 2 cores, torch
    2.14.1": what floating-point results depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        torch = f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch = "no torch"
    return f"{cpu}, {os.cpu_count()} cores, {torch}"


# What the comparison records of each run: {name: config key}.
RUN_FACTS = {"architecture": "MODEL.META_ARCHITECTURE", "seed": "SEED",
             "device": "MODEL.DEVICE", "epochs": "SOLVER.MAX_EPOCH",
             "sysu_trials": "TEST.SYSU.TRIALS"}


def run_facts(run_dir: str | os.PathLike) -> dict:
    """:data:`RUN_FACTS` of a run, read from its config.yaml ({} when the run has none;
    CiftInputError when it is not YAML)."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CiftInputError(f"{path}: not a readable config ({type(err).__name__})") from None
    facts = {}
    for name, key in RUN_FACTS.items():
        value = cfg
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        facts[name] = value
    return facts


def comparison_data(runs: dict[str, dict], run_dirs: dict[str, str], metrics=None,
                    command: str = "", date: str | None = None) -> dict:
    """The JSON-able comparison of `runs` ({label: protocol results}) kept in `run_dirs`
    ({label: the folder as given}): when, where and how it was made, each run's facts, and
    :func:`comparison_tables`."""
    return {"format": FORMAT,
            "measured": {"date": date or datetime.date.today().isoformat(),
                         "machine": machine(), "command": command},
            "runs": {label: {"dir": str(run_dirs[label]), **run_facts(run_dirs[label])}
                     for label in runs},
            "tables": comparison_tables(runs, metrics)}


def margin(table: dict, setting: str, column: str, reference: str, metric: str
           ) -> tuple[float, float] | None:
    """(difference of means, twice the larger std) of `column` over `reference` for one
    setting and metric of a :func:`comparison_tables` table; None where either lacks it."""
    row = table["rows"].get(setting, {})
    if column not in row or reference not in row:
        return None
    (mean, std), (ref_mean, ref_std) = row[column][metric], row[reference][metric]
    return round(mean - ref_mean, 2), round(2 * max(std, ref_std), 2)


def mean_std_table(table: dict) -> str:
    """A Markdown table: a row per setting, "mean ± std" per column and metric, the best mean
    of each metric in bold."""
    names, columns = table["metrics"], table["columns"]
    lines = ["| setting | " + " | ".join(f"{c} {m}" for c in columns for m in names) + " |",
             "|---" * (1 + len(columns) * len(names)) + "|"]
    for setting, row in table["rows"].items():
        best = {m: max((row[c][m][0] for c in columns if c in row), default=None)
                for m in names}
        cells = []
        for c in columns:
            for m in names:
                if c not in row:
                    cells.append("-")
                    continue
                mean, std = row[c][m]
                cell = f"{mean:.1f} ± {std:.1f}"
                cells.append(f"**{cell}**" if mean == best[m] and len(columns) > 1 else cell)
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def margin_cell(found: tuple[float, float] | None) -> str:
    """A :func:`margin` as a table cell: "+d (2σ t) ✓" where d exceeds t, "✗" otherwise, "-"
    for None."""
    if found is None:
        return "-"
    d, twice = found
    return f"{d:+.1f} (2σ {twice:.1f}) {'✓' if d > twice else '✗'}"


def margin_table(table: dict, reference: str) -> str:
    """A Markdown table of every other column's margins over `reference`: "+d (2σ t)" per
    setting and metric, marked ✓ where d exceeds t, ✗ otherwise."""
    names = table["metrics"]
    others = [c for c in table["columns"] if c != reference]
    lines = ["| setting | " + " | ".join(f"{c} − {reference} {m}" for c in others
                                          for m in names) + " |",
             "|---" * (1 + len(others) * len(names)) + "|"]
    for setting in table["rows"]:
        cells = [margin_cell(margin(table, setting, c, reference, m))
                 for c in others for m in names]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_markdown(data: dict) -> str:
    """:func:`comparison_data` as Markdown: per test set, the mean ± std table and the margins
    over the first run's column, then when and where it was measured, and the command."""
    reference = next(iter(data["runs"]))
    trials = {facts.get("sysu_trials") for facts in data["runs"].values()} - {None}
    over = f"{trials.pop()} trials" if len(trials) == 1 else "trials"
    parts = []
    for dataset, table in data["tables"].items():
        parts += [f"{dataset}, {' / '.join(table['metrics'])} in %, mean ± std over {over} "
                  "(best in bold):",
                  "", mean_std_table(table), ""]
        if len(table["columns"]) > 1 and reference in table["columns"]:
            parts += [f"Margins over {reference} in points, beside twice the larger of the two "
                      "standard deviations (✓: beyond it):", "", margin_table(table, reference),
                      ""]
    measured = data["measured"]
    note = f"Measured on {measured['date']} on {measured['machine']}"
    if measured.get("command"):
        note += f", by `{measured['command']}`"
    return "\n".join(parts + [note + "."])


def seeds_markdown(results: list[dict], metrics=("R1", "mAP")) -> str:
    """Several :func:`comparison_data` of the same comparison with other seeds, as one Markdown
    table per test set: a row per setting and metric, a column per other column and seed, each
    cell its margin over the first run's column as in :func:`margin_table`, then how many cells
    clear their margin."""
    reference = next(iter(results[0]["runs"]))
    seeds = [data["runs"][reference].get("seed") for data in results]
    parts = []
    for dataset, first in results[0]["tables"].items():
        tables = [data["tables"][dataset] for data in results]
        others = [c for c in first["columns"] if c != reference]
        lines = ["| setting | metric | " + " | ".join(f"{c} seed {s}" for c in others
                                                      for s in seeds) + " |",
                 "|---" * (2 + len(others) * len(seeds)) + "|"]
        cleared = {c: 0 for c in others}
        for setting in first["rows"]:
            for m in metrics:
                cells = []
                for c in others:
                    for table in tables:
                        found = margin(table, setting, c, reference, m)
                        cleared[c] += found is not None and found[0] > found[1]
                        cells.append(margin_cell(found))
                lines.append(f"| {setting} | {m} | " + " | ".join(cells) + " |")
        cells_per_column = len(first["rows"]) * len(metrics) * len(seeds)
        summary = "; ".join(f"{c}: {n} of {cells_per_column}" for c, n in cleared.items())
        parts += [f"{dataset}, margins over {reference} in points by seed, beside twice the "
                  "larger standard deviation over trials (✓: beyond it):", "", *lines, "",
                  f"Cells beyond their margin: {summary}."]
    return "\n".join(parts)

#!/usr/bin/env python
"""Score saved test features with the SYSU-MM01, RegDB or LLCM protocol, raw and after CIFT's
test-time transfer and/or k-reciprocal re-ranking: features in, protocol tables out.

    python projects/CIFT/tools/evaluate_features.py FILE [--settings all-single ...]
        [--transfer [--k 4 --tau-hom 0.4 --tau-het 0.2]] [--rerank [--k1 20 --k2 6
        --lambda 0.3]] [--top-r R] [--cmc-mode identity|image] [--out DIR]
    python projects/CIFT/tools/evaluate_features.py regdb_split{1..10}.npz   # ten splits
    python projects/CIFT/tools/evaluate_features.py VAL_FILE --grid --k 2,4,8
        --tau-hom 0.3,0.4 --tau-het 0.1,0.2 --query val_query --gallery val_gallery

FILE is a features file (docs/features.md: .npz, .pt or .safetensors) written by
`train_net.py ... TEST.SAVE_FEATURES True` or by any code base's test loop. Prints the mean ±
std tables the evaluator prints (R1/R5/R10/R20, mAP, mINP per setting) for the raw features and
each post-processing asked for, side by side, and writes protocol_results.json and the CMC
plot to --out. Distances are −q·gᵀ of the features as given (float64), as the public VI-ReID
test scripts compute them, so the raw numbers are theirs. The settings the file records
(trials, CMC mode, the model's k and temperatures) are the defaults; flags override them.
Without a model, a trainer or a GPU.
"""
from __future__ import annotations

import argparse
import ast
import itertools
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import cift  # noqa: E402, F401  first: patches fastreid and registers everything

# isort: split
from fastreid.data.datasets import DATASET_REGISTRY  # noqa: E402

from cift.atomic import atomic_write_json  # noqa: E402
from cift.config import check_value, load_config  # noqa: E402
from cift.data.build import datasets_root  # noqa: E402
from cift.data.datasets.sysu_mm01 import SYSUMM01  # noqa: E402
from cift.errors import CiftInputError, print_input_error  # noqa: E402
from cift.evaluation.cmc_plot import save_cmc_curves  # noqa: E402
from cift.evaluation.features_file import SavedFeatures, read_features_file  # noqa: E402
from cift.evaluation.report import RESULTS_FILE, compare_table, format_protocol_table  # noqa: E402
from cift.evaluation.retrieval import check_retrieval  # noqa: E402
from cift.evaluation.tasks import (  # noqa: E402
    build_tasks,
    metric_names,
    run_tasks,
    run_tasks_top_r,
    summarise_scores,
)
from cift.evaluation.vi_evaluator import (  # noqa: E402
    GraphTransfer,
    protocol_distances,
    protocol_retrieval,
)
from cift.fastreid_private import registered_names  # noqa: E402
from cift.modeling.graph import GraphSettings  # noqa: E402
from cift.modeling.pool_transfer import numpy_pool_transfer  # noqa: E402
from cift.search_settings import search_backend, transfer_settings  # noqa: E402

RAW, TRANSFER, RERANK, BOTH = "raw", "transfer", "rerank", "transfer+rerank"
GRID_FILE = "grid_results.json"
GRID_NOTE = ("note: these are test-set numbers; k and temperatures chosen on them give no valid "
             "result: choose them on held-out training identities (a validation file with "
             "--query/--gallery masks, README 'Evaluate your own model')")
# flag -> the config key it stands for (checked with cift.config.check_value)
FLAG_KEYS = {"graph": "MODEL.CIFT.GRAPH", "k": "MODEL.CIFT.TOPK", "tau_hom": "MODEL.CIFT.TAU_HOM",
             "tau_het": "MODEL.CIFT.TAU_HET", "top_r": "TEST.RETRIEVAL.TOP_R",
             "cmc_mode": "TEST.CMC_MODE", "vis_to_ir": "TEST.LLCM.VIS_TO_IR",
             "k1": "TEST.RERANK.K1", "k2": "TEST.RERANK.K2", "lambda_": "TEST.RERANK.LAMBDA",
             "transfer_mode": "TEST.TRANSFER.MODE"}
GRID_FLAGS = ("k", "tau_hom", "tau_het")
TRIAL_KEYS = {"sysu": "TEST.SYSU.TRIALS", "llcm": "TEST.LLCM.TRIALS"}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one `error:` line (exit status 2), as every input error."""

    def error(self, message: str):
        raise CiftInputError(message)


def argument_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="features file(s); RegDB: one per split, aggregated")
    parser.add_argument("--protocol", choices=["sysu", "regdb", "llcm"],
                        help="expected protocol (default: the file's benchmark's)")
    parser.add_argument("--settings", nargs="+", metavar="NAME",
                        help="report only these settings (e.g. all-single indoor-single)")
    parser.add_argument("--trials", metavar="N", help="SYSU-MM01 / LLCM gallery draws")
    parser.add_argument("--features", choices=["auto", "feats"], default="auto",
                        help="auto: a CIFT file's graph branch of the queries' modality, else "
                             "feats; feats: the feats array (a CIFT file's backbone branch)")
    parser.add_argument("--transfer", action="store_true", help="add CIFT's test-time transfer")
    parser.add_argument("--graph", help="h2ft or gft (MODEL.CIFT.GRAPH)")
    parser.add_argument("--k", help="neighbours kept per row, self included (MODEL.CIFT.TOPK)")
    parser.add_argument("--tau-hom", help="gallery-row temperature (MODEL.CIFT.TAU_HOM)")
    parser.add_argument("--tau-het", help="query-row temperature (MODEL.CIFT.TAU_HET)")
    parser.add_argument("--transfer-mode", help="auto, dense or sparse (TEST.TRANSFER.MODE)")
    parser.add_argument("--rerank", action="store_true", help="add k-reciprocal re-ranking")
    parser.add_argument("--k1", help="TEST.RERANK.K1")
    parser.add_argument("--k2", help="TEST.RERANK.K2")
    parser.add_argument("--lambda", dest="lambda_", metavar="LAMBDA", help="TEST.RERANK.LAMBDA")
    parser.add_argument("--top-r", help="score from each query's R nearest gallery images "
                                        "(TEST.RETRIEVAL.TOP_R; 0: full rankings)")
    parser.add_argument("--cmc-mode", help="identity or image (TEST.CMC_MODE)")
    parser.add_argument("--vis-to-ir", help="LLCM: semantic or reference (TEST.LLCM.VIS_TO_IR)")
    parser.add_argument("--grid", action="store_true",
                        help="one transferred evaluation per combination of the comma-separated "
                             "--k, --tau-hom, --tau-het values")
    parser.add_argument("--query", default="query", metavar="FIELD",
                        help="bool field of the file selecting the queries (default: query)")
    parser.add_argument("--gallery", metavar="FIELD",
                        help="bool field selecting the gallery pool (default: not --query)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="where the data sets are (default $FASTREID_DATASETS or "
                             "./datasets): the file is checked against the test split there")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: <first FILE without suffix>_evaluation)")
    return parser


# ---------------------------------------------------------------- inputs


def literal(text: str):
    """A flag's text as the config would read it: an int, a float, or the text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text


def flag_values(args: argparse.Namespace) -> dict[str, list]:
    """{flag: [checked values]} of the flags given; several values only for --grid flags."""
    values = {}
    for flag, key in FLAG_KEYS.items():
        text = getattr(args, flag)
        if text is None:
            continue
        values[flag] = [check_value(key, literal(t)) for t in text.split(",")]
        if len(values[flag]) > 1 and not (args.grid and flag in GRID_FLAGS):
            name = "--" + flag.rstrip("_").replace("_", "-")
            raise CiftInputError(f"{name} {text!r}: several values need --grid"
                                 if flag in GRID_FLAGS else f"{name} {text!r}: one value")
    return values


def read_files(args: argparse.Namespace) -> list[SavedFeatures]:
    """The checked files: one, or one per RegDB split; all of one benchmark and feature size."""
    files = [read_features_file(path) for path in args.files]
    first = files[0]
    if args.protocol and args.protocol != first.protocol:
        raise CiftInputError(f"{first.path}: benchmark {first.benchmark} (protocol "
                             f"{first.protocol}), but --protocol {args.protocol}")
    for i, other in enumerate(files[1:], start=1):
        if first.protocol != "regdb" or other.benchmark != first.benchmark:
            raise CiftInputError(f"{other.path}: several files are RegDB splits only (the "
                                 f"first is {first.benchmark})")
        if other.split in [f.split for f in files[:i]]:
            raise CiftInputError(f"{other.path}: split {other.split} is given twice")
        if {k: x.shape[1] for k, x in other.features.items()} != {
                k: x.shape[1] for k, x in first.features.items()}:
            raise CiftInputError(f"{other.path}: feature arrays or their size d differ from "
                                 f"{first.path}'s")
    return files


def config(args: argparse.Namespace, saved: SavedFeatures, flags: dict[str, list]):
    """A CIFT config of the file's data set, the file's recorded settings, then the flags
    (first grid values)."""
    # fastreid's own defaults (Baseline, EmbeddingHead, Market1501) are not a cift config
    opts = ["MODEL.META_ARCHITECTURE", "CIFT", "MODEL.HEADS.NAME", "BNNeckHead",
            "DATASETS.NAMES", (saved.dataset,), "DATASETS.TESTS", (saved.dataset,)]
    for key, value in saved.settings.items():
        try:
            opts += [key, check_value(key, value)]
        except CiftInputError as err:
            raise CiftInputError(f"{saved.path}: settings: {err}") from None
    for flag, values in flags.items():
        opts += [FLAG_KEYS[flag], values[0]]
    if args.trials is not None and saved.protocol in TRIAL_KEYS:
        opts += [TRIAL_KEYS[saved.protocol], check_value(TRIAL_KEYS[saved.protocol],
                                                         literal(args.trials))]
    try:
        cfg = load_config("", opts)
    except CiftInputError as err:
        raise CiftInputError(f"{saved.path}: settings: {err}") from None
    check_retrieval(cfg)
    return cfg


def split_rows(saved: SavedFeatures, query: str, gallery: str | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the queries and of the gallery pool: the masks `query` and `gallery`
    (default: every other row), checked against the protocol's modalities."""
    masks = saved.masks
    for name in (query, gallery):
        if name is not None and name not in masks:
            raise CiftInputError(f"{saved.path}: no bool mask {name!r}; the file has "
                                 f"{', '.join(masks)}")
    q_mask = masks[query]
    g_mask = ~q_mask if gallery is None else masks[gallery]
    if not q_mask.any():
        raise CiftInputError(f"{saved.path}: the query mask {query!r} selects no image")
    if not g_mask.any():
        raise CiftInputError(f"{saved.path}: the gallery selects no image")
    both = q_mask & g_mask
    if both.any():
        row = int(np.flatnonzero(both)[0])
        raise CiftInputError(f"{saved.path}: row {row} ({saved.paths[row]}) is both a query "
                             f"and a gallery image")
    query_modality = {"sysu": "infrared", "regdb": "visible", "llcm": "visible"}[saved.protocol]
    modality = np.asarray(saved.modality)
    for mask, wanted, what in ((q_mask, query_modality, "queries"),
                               (g_mask, None, "gallery images")):
        wanted = wanted or ({"visible", "infrared"} - {query_modality}).pop()
        wrong = mask & (modality != wanted)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise CiftInputError(f"{saved.path}: row {row} ({saved.paths[row]}) is "
                                 f"{modality[row]}, but {saved.benchmark}'s {what} are {wanted}")
    return np.flatnonzero(q_mask), np.flatnonzero(g_mask)


class _SYSULayout(SYSUMM01):
    """SYSU-MM01's reader on another folder of its layout (e.g. a generated SyntheticVI),
    which it only reads."""

    def __init__(self, root: str, dataset_dir: str):
        self.dataset_dir = dataset_dir
        super().__init__(root)


def test_split(saved: SavedFeatures, root: str) -> tuple[list[tuple], int, Path] | None:
    """(items, number of queries, folder) of the file's data set's test split under `root`, or
    None when its folder is not there."""
    try:
        factory = DATASET_REGISTRY.get(saved.dataset)
    except KeyError:
        known = ", ".join(registered_names(DATASET_REGISTRY))
        raise CiftInputError(f"{saved.path}: unknown data set {saved.dataset!r}; known: "
                             f"{known}") from None
    if not (Path(root) / factory.dataset_dir).is_dir():
        return None
    if issubclass(factory, SYSUMM01):
        data = _SYSULayout(root, factory.dataset_dir)
    elif saved.protocol == "regdb":
        data = factory(root=root, trial=saved.split)
    else:
        data = factory(root=root)
    return data.query + data.gallery, len(data.query), Path(data.data_dir)


def check_against_test_split(saved: SavedFeatures, root: str) -> bool:
    """Whether the file's items could be checked against the data set's test split (False when
    the data set is not under `root`); CiftInputError naming the first mismatch."""
    found = test_split(saved, root)
    if found is None:
        return False
    items, num_query, folder = found
    where = f"the test split of {saved.dataset} in {folder}"
    if len(items) != len(saved.paths):
        raise CiftInputError(f"{saved.path}: {len(saved.paths)} images, {where} has "
                             f"{len(items)}")
    query = saved.masks["query"]
    for row, (item, path) in enumerate(zip(items, saved.paths, strict=True)):
        expected = (Path(item[0]).relative_to(folder).as_posix(), int(item[1]), int(item[2]),
                    str(item[3]), row < num_query)
        got = (path, int(saved.pids[row]), int(saved.camids[row]), saved.modality[row],
               bool(query[row]))
        for name, want, have in zip(("path", "pid", "camid", "modality", "query"),
                                    expected, got, strict=True):
            if want != have:
                raise CiftInputError(f"{saved.path}: row {row} ({path}): {name} {have!r}, "
                                     f"{where} has {want!r}")
    return True


# ---------------------------------------------------------------- scoring


class Scorer:
    """One file's features, items and tasks, scored raw or post-processed."""

    def __init__(self, saved: SavedFeatures, args: argparse.Namespace, cfg):
        q_rows, g_rows = split_rows(saved, args.query, args.gallery)
        rows = np.concatenate([q_rows, g_rows])
        all_items = saved.items()
        self.items = [all_items[i] for i in rows]
        self.arrays = {name: x[rows] for name, x in saved.features.items()}
        self.branches = args.features == "auto" and "feats_i2r" in self.arrays
        try:
            tasks = build_tasks(cfg, saved.protocol, self.items, q_rows.size)
        except ValueError as err:  # e.g. too few images for a multi-shot draw
            raise CiftInputError(f"{saved.path}: {err}") from None
        known = [t.name for t in tasks]
        wanted = args.settings or known
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise CiftInputError(f"--settings {unknown[0]}: {saved.benchmark} reports "
                                 f"{', '.join(known)}")
        self.tasks = [t for t in tasks if t.name in wanted]
        self.cfg = cfg
        self.path = saved.path

    def features(self, branch: str) -> np.ndarray:
        return self.arrays[f"feats_{branch}" if self.branches else "feats"]

    def score(self, transfer: GraphTransfer | None, rerank: dict | None,
              scores: dict[str, list]) -> None:
        """Every task's per-trial scores appended to `scores` ({task: [scores]})."""
        found: dict[str, list] = {}
        top_r = self.cfg.TEST.RETRIEVAL.TOP_R
        try:
            if top_r:
                backend = search_backend(self.cfg)
                run_tasks_top_r(self.features, self.items, self.tasks,
                                lambda branch: protocol_retrieval(transfer, branch, backend),
                                top_r, trial_scores=found)
            else:
                run_tasks(self.features, self.items, self.tasks,
                          protocol_distances(transfer, rerank), trial_scores=found)
        except ValueError as err:  # e.g. no query identity in the gallery
            raise CiftInputError(f"{self.path}: {err}") from None
        for name, trials in found.items():
            scores.setdefault(name, []).extend(trials)


def evaluate(scorers: list[Scorer], cfg, methods: dict[str, tuple]
             ) -> tuple[OrderedDict, dict[str, np.ndarray]]:
    """{method: {setting: metrics}} over every scorer's trials, and the CMC curves
    {"<method> <setting>": (20,) CMC}."""
    results, curves = OrderedDict(), {}
    for method, (transfer, rerank) in methods.items():
        scores: dict[str, list] = {}
        for scorer in scorers:
            scorer.score(transfer, rerank, scores)
        method_curves: dict[str, np.ndarray] = {}
        results[method] = summarise_scores(scores, metric_names(cfg.TEST.RETRIEVAL.TOP_R),
                                           method_curves)
        curves.update({f"{method} {name}": c for name, c in method_curves.items()})
    return results, curves


def methods_of(args: argparse.Namespace, cfg) -> dict[str, tuple]:
    """{method: (transfer, rerank)} of the raw features and each post-processing asked for."""
    transfer = numpy_pool_transfer(GraphSettings.from_config(cfg), transfer_settings(cfg))
    r = cfg.TEST.RERANK
    rerank = dict(k1=r.K1, k2=r.K2, lambda_value=r.LAMBDA)
    methods = {RAW: (None, None)}
    if args.transfer:
        methods[TRANSFER] = (transfer, None)
    if args.rerank:
        methods[RERANK] = (None, rerank)
    if args.transfer and args.rerank:
        methods[BOTH] = (transfer, rerank)
    return methods


def grid(args: argparse.Namespace, scorers: list[Scorer], cfg, flags: dict[str, list]
         ) -> list[dict]:
    """One transferred evaluation per (k, tau_hom, tau_het) combination."""
    base, how = GraphSettings.from_config(cfg), transfer_settings(cfg)
    axes = {name: flags.get(name, [getattr(base, name)]) for name in GRID_FLAGS}
    rows = []
    for k, tau_hom, tau_het in itertools.product(*axes.values()):
        settings = GraphSettings(graph=base.graph, tau_hom=tau_hom, tau_het=tau_het, k=k)
        results, _ = evaluate(scorers, cfg, {TRANSFER: (numpy_pool_transfer(settings, how),
                                                        None)})
        rows.append({"k": k, "tau_hom": tau_hom, "tau_het": tau_het, **results[TRANSFER]})
    return rows


def grid_table(rows: list[dict], average: str) -> str:
    from tabulate import tabulate

    settings = [name for name in rows[0] if isinstance(rows[0][name], dict)]
    headers = ["k", "tau_hom", "tau_het"] + [f"{s} R1 / {average}" for s in settings]
    table = [[r["k"], r["tau_hom"], r["tau_het"]] + [
        f"{r[s]['R1']:.2f} / {r[s][average]:.2f}" for s in settings] for r in rows]
    return tabulate(table, headers=headers, tablefmt="pipe")


# ---------------------------------------------------------------- command


def run(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except CiftInputError as err:
        return print_input_error(err)


def _run(argv: list[str] | None) -> int:
    args = argument_parser().parse_args(argv)
    flags = flag_values(args)
    files = read_files(args)
    first = files[0]
    cfg = config(args, first, flags)
    if args.rerank and cfg.TEST.RETRIEVAL.TOP_R:
        raise CiftInputError("--top-r with --rerank: re-ranking needs the whole distance "
                             "matrix; give one of them")
    for saved in files:
        split_rows(saved, args.query, args.gallery)
    root = args.data_root or datasets_root()
    checked = [check_against_test_split(f, root) if args.query == "query" and
               args.gallery is None else False for f in files]
    scorers = [Scorer(f, args, config(args, f, flags)) for f in files]
    if first.settings.get("MODEL.CIFT.PROJECTION") == "linear" and (args.transfer or args.grid):
        print("note: the model computes its affinities through a learned projection, which a "
              "features file does not hold; this transfer uses the features themselves")
    out = Path(args.out or Path(first.path).with_suffix("").as_posix() + "_evaluation")
    name = first.dataset
    what = ", ".join(Path(f.path).name for f in files)
    print(f"{name} ({first.benchmark} protocol) from {what}: "
          + ("checked against the data set's test split" if all(checked) else
             "not checked against a test split (no data set folder, or --query/--gallery)"))
    if args.grid:
        print(GRID_NOTE)
        rows = grid(args, scorers, cfg, flags)
        average = metric_names(cfg.TEST.RETRIEVAL.TOP_R)[4]
        print(grid_table(rows, average))
        print(GRID_NOTE)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(os.path.join(out, GRID_FILE), {name: rows})
        print(f"wrote {out / GRID_FILE}")
        return 0
    results, curves = evaluate(scorers, cfg, methods_of(args, cfg))
    print(format_protocol_table(results, title=f"{name} protocol (mean ± std over trials, %)"))
    if len(results) > 1:
        print("\n" + compare_table({m: {name: r} for m, r in results.items()}, name))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(os.path.join(out, RESULTS_FILE), {name: results})
    written = save_cmc_curves({name: curves}, out)
    print(f"wrote {out / RESULTS_FILE}" + "".join(f", {p}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(run())

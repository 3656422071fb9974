#!/usr/bin/env python
"""Queries and their top affinity neighbours on the test graph, as a PNG grid (supplementary
Figs. 2-5): green frame = right identity, red = wrong, blue = the query; captions are the
neighbours' weights in the model's top-k affinity.

    python projects/CIFT/tools/visualize_affinity.py --out logs/affinity.png \\
        --model CIFT configs/Demo/cift_synthetic.yml logs/demo/cift/model_final.pth
    python projects/CIFT/tools/visualize_affinity.py --out logs/cri.png --random 8 --seed 1 \\
        --model "with CRI" configs/SYSU-MM01/ablations/h2ft_cri_R50.yml logs/cri/model_final.pth \\
        --model "without CRI" configs/SYSU-MM01/ablations/h2ft_R50.yml logs/h2ft/model_final.pth \\
        MODEL.DEVICE cpu

One --model draws one group per query; two draw them side by side (the same queries and
gallery). Queries are positions among the task's queries (--queries 0,5,9) or a random draw
(--random N --seed S); the gallery is the task's first trial. A model without graph branches
(the baseline) is shown on the default H2FT graph of its features. Trailing KEY VALUE pairs
override every model's config.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from cift.analysis.plots import Tile, affinity_grid  # noqa: E402
from cift.analysis.probe import (  # noqa: E402
    EvalGraph,
    build_probe,
    extract_features,
    top_neighbours,
)
from cift.arguments import COUNT, SEED, one_line_errors, output_file  # noqa: E402
from cift.branches import branch_features  # noqa: E402
from cift.config import load_config  # noqa: E402
from cift.data.build import load_dataset  # noqa: E402
from cift.errors import CiftInputError  # noqa: E402
from cift.evaluation.tasks import build_tasks  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = one_line_errors(argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--model", nargs=3, action="append", required=True,
                   metavar=("LABEL", "CONFIG", "WEIGHTS"),
                   help="a model to show (once, or twice for side by side)")
    p.add_argument("--out", type=output_file, required=True, help="output PNG")
    p.add_argument("--dataset", default="", help="test set (default: DATASETS.TESTS[0])")
    p.add_argument("--task", default="", help="evaluation task, e.g. all-single, "
                   "visible-thermal (default: the first)")
    p.add_argument("--queries", type=query_positions, default=[],
                   help="comma-separated query positions")
    p.add_argument("--random", type=COUNT, default=6, help="random queries when --queries is "
                   "not given (default 6)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random queries")
    p.add_argument("--top", type=COUNT, default=3, help="neighbours per query (default 3)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = p.parse_args(argv)
    if len(args.model) > 2:
        p.error("--model: at most two models")
    return args


def query_positions(text: str) -> list[int]:
    """'0,5,9' -> [0, 5, 9] (argparse `type` of --queries; the upper bound needs the task)."""
    try:
        positions = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        positions = []
    if not positions or min(positions) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated query positions "
                                         ">= 0")
    return positions


def choose_queries(cfg, dataset: str, task: str, spec: list[int], count: int, seed: int
                   ) -> tuple[str, list[int]]:
    """(task name, query positions) from --task, --queries or a seeded random draw."""
    data = load_dataset(cfg, dataset)
    items = data.query + data.gallery
    tasks = {t.name: t for t in build_tasks(cfg, data.protocol, items, len(data.query))}
    name = task or next(iter(tasks))
    if name not in tasks:
        raise CiftInputError(f"--task {name!r}: not a task of {dataset}; known: {list(tasks)}")
    n_queries = len(tasks[name].trials[0][0])
    if spec:
        positions = spec
        if max(positions) >= n_queries:
            raise CiftInputError(f"--queries {positions!r}: expected positions in "
                                 f"0..{n_queries - 1} ({name} of {dataset})")
    else:
        rng = np.random.default_rng(seed)
        positions = sorted(rng.choice(n_queries, size=min(count, n_queries), replace=False))
    return name, [int(p) for p in positions]


def load_model(config: str, weights: str, opts: list[str]):
    """(cfg, model in eval mode with `weights` loaded)."""
    from fastreid.modeling.meta_arch import build_model

    from cift.engine.checkpoint import AtomicCheckpointer

    cfg = load_config(config, opts)
    if not Path(weights).is_file():
        raise CiftInputError(f"{weights}: weights file not found")
    model = build_model(cfg)
    AtomicCheckpointer(model).load(weights)
    return cfg, model.eval()


def neighbour_groups(cfg, model, dataset: str, task: str, positions: list[int], top: int):
    """Per query: (query item, [(neighbour item, weight)]) on the model's test graph, and the
    probe's items (to check that side-by-side models see the same images)."""
    probe = build_probe(cfg, dataset, queries={task: positions}, task_names=[task])
    features = extract_features(model, probe.loader, cfg.TEST.FLIP.ENABLED)
    t = probe.tasks[0]
    x = branch_features(features, t.branch)
    q, g = t.trials[0]
    order, weights = top_neighbours(x[g], x[q], EvalGraph.of(model, t.branch), top)
    columns = [probe.items[i] for i in g] + [probe.items[i] for i in q]
    groups = [(probe.items[qi],
               [(columns[c], float(w)) for c, w in zip(order[r], weights[r], strict=True)])
              for r, qi in enumerate(q)]
    return groups, [it[0] for it in probe.items]


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        loaded = [(label, *load_model(config, weights, args.opts))
                  for label, config, weights in args.model]
        cfg0 = loaded[0][1]
        dataset = args.dataset or cfg0.DATASETS.TESTS[0]
        task, positions = choose_queries(cfg0, dataset, args.task, args.queries, args.random,
                                         args.seed)
        per_model, paths = [], None
        for label, cfg, model in loaded:
            groups, probe_paths = neighbour_groups(cfg, model, dataset, task, positions,
                                                   args.top)
            if paths is not None and probe_paths != paths:
                raise CiftInputError(f"{label}: its config selects other test images than "
                                     f"{loaded[0][0]}'s; compare models on the same data")
            paths = probe_paths
            per_model.append(groups)
    except CiftInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    for r in range(len(positions)):
        row = []
        for groups in per_model:
            query, neighbours = groups[r]
            row.append([Tile(query[0], None, f"id {query[1]}")]
                       + [Tile(item[0], item[1] == query[1], f"{w:.2f}")
                          for item, w in neighbours])
        rows.append(row)
    labels = [label for label, _, _ in loaded]
    path = affinity_grid(rows, args.out, headers=labels)
    for label, groups in zip(labels, per_model, strict=True):
        right = sum(item[1] == query[1] for query, neighbours in groups for item, _ in neighbours)
        total = sum(len(neighbours) for _, neighbours in groups)
        print(f"{label}: {right}/{total} top-{args.top} neighbours of the right identity")
    print(f"{len(rows)} queries of {dataset} {task} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

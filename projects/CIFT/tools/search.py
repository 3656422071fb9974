#!/usr/bin/env python
"""Search a gallery of person images with a trained model (docs/model_zoo.md).

    python projects/CIFT/tools/search.py --config-file CFG MODEL.WEIGHTS W \\
        --query DIR_OR_IMAGES... --query-modality infrared \\
        --gallery DIR... --gallery-modality visible [--topk 10] [--no-transfer] [--output DIR]

Extracts features in batches, transfers them on the [gallery ; queries] graph with the CIFT
branch of the query modality (visible -> r2i, infrared -> i2r; not with --no-transfer),
ranks the gallery by cosine similarity and writes OUTPUT/results.json and one rank-list PNG per
query in OUTPUT/ranklists/. Identities come from folder names (.../<pid>/<image>). KEY VALUE
config options go before the flags that take several paths, or after `--`.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import cift  # noqa: E402, F401  first: patches fastreid and registers everything

# isort: split
from cift.arguments import COUNT, key_flag, output_folder, tool_parser  # noqa: E402
from cift.branches import BRANCH_OF_QUERY_MODALITY  # noqa: E402
from cift.config import load_config  # noqa: E402
from cift.engine.checkpoint import add_trust_argument  # noqa: E402
from cift.errors import CiftInputError, CiftJobError, print_input_error  # noqa: E402
from cift.export.inference import load_inference_model  # noqa: E402
from cift.export.search import RESULTS_FILE, run_search  # noqa: E402

MODALITIES = tuple(BRANCH_OF_QUERY_MODALITY)


def argument_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    parser.add_argument("--config-file", required=True, metavar="FILE",
                        help="the model's config (a model-zoo entry's config.yaml)")
    parser.add_argument("--query", required=True, nargs="+", metavar="PATH",
                        help="query folders or image files")
    parser.add_argument("--query-modality", required=True, choices=MODALITIES)
    parser.add_argument("--gallery", required=True, nargs="+", metavar="DIR",
                        help="gallery folders (or image files)")
    parser.add_argument("--gallery-modality", required=True, choices=MODALITIES)
    parser.add_argument("--topk", type=COUNT, default=10, help="results per query (default 10)")
    parser.add_argument("--no-transfer", action="store_true",
                        help="rank CIFT's BNNeck features without the graph transfer (CIFT†)")
    parser.add_argument("--output", type=output_folder, default=os.path.join("output", "search"),
                        metavar="DIR",
                        help="where results.json and ranklists/ go (default output/search)")
    parser.add_argument("--batch-size", type=key_flag("TEST.IMS_PER_BATCH"), default=None,
                        help="images per forward pass (default TEST.IMS_PER_BATCH)")
    add_trust_argument(parser)
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides, MODEL.WEIGHTS among them")
    return parser


def search(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config_file, args.opts)
    cfg, model, _ = load_inference_model(cfg, trust=args.trust_checkpoint)
    return run_search(cfg, model, args.query, args.query_modality, args.gallery,
                      args.gallery_modality, args.output, topk=args.topk,
                      transfer=not args.no_transfer, batch_size=args.batch_size)


def run(argv: list[str] | None = None) -> int:
    try:
        args = argument_parser().parse_intermixed_args(argv)
        results = search(args)
    except (CiftInputError, CiftJobError) as err:  # a job error: a write that failed (disk full)
        return print_input_error(err)
    how = (f"branch {results['branch']}, " if results["branch"] else "") + (
        "graph transfer" if results["transfer"] else "no transfer")
    print(f"{results['num_queries']} queries against {results['gallery_size']} gallery images "
          f"({how}, {len(results['skipped'])} skipped): {os.path.join(args.output, RESULTS_FILE)}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    sys.exit(run())

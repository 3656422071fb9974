#!/usr/bin/env python
"""Export a trained checkpoint as a model-zoo entry (docs/model_zoo.md).

    python projects/CIFT/tools/export_model.py --config-file CFG MODEL.WEIGHTS ckpt.pth \\
        --output DIR [--onnx] [--force] [--metrics FILE] [--trust-checkpoint]

Writes DIR/model_final_<sha256[:8]>.safetensors (weights only), DIR/config.yaml (the resolved
config, MODEL.HEADS.NUM_CLASSES filled in, OUTPUT_DIR logs/zoo/<DIR name>) and DIR/metrics.json
(the run's evaluation, when the checkpoint is its last one and the run's config.yaml matches
this config, or --metrics FILE, checked against the config.yaml beside it); with --onnx also
DIR/model_final_<sha256[:8]>.onnx (the same hash: the weights it comes from), checked against
PyTorch with onnxruntime. KEY VALUE config
options may come anywhere (after `--` if a value starts with '-').
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import cift  # noqa: E402, F401  first: patches fastreid and registers everything

# isort: split
from cift.arguments import output_folder, tool_parser  # noqa: E402
from cift.config import load_config  # noqa: E402
from cift.engine.checkpoint import add_trust_argument  # noqa: E402
from cift.errors import CiftInputError, CiftJobError, print_input_error  # noqa: E402
from cift.export.inference import load_inference_model  # noqa: E402
from cift.export.model_zoo import (  # noqa: E402
    CONFIG_FILE,
    check_entry_target,
    config_differences,
    run_metrics,
    write_entry,
)

logger = logging.getLogger("cift.export")


def argument_parser() -> argparse.ArgumentParser:
    parser = tool_parser(__doc__)
    parser.add_argument("--config-file", required=True, metavar="FILE",
                        help="the config the checkpoint was trained with")
    parser.add_argument("--output", type=output_folder, required=True, metavar="DIR",
                        help="entry folder")
    parser.add_argument("--force", action="store_true",
                        help="replace an entry already in --output")
    parser.add_argument("--onnx", action="store_true",
                        help="also export the feature extractor to ONNX")
    parser.add_argument("--metrics", metavar="FILE",
                        help="evaluation results (JSON) for metrics.json; default: the run's "
                             "protocol_results.json when the checkpoint is its last one")
    add_trust_argument(parser)
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides, MODEL.WEIGHTS among them")
    return parser


def check_metrics_config(cfg, metrics_file: str) -> None:
    """Refuse --metrics FILE produced under another config: the config.yaml beside FILE (as a
    run or an --eval-only job leaves it) must agree with `cfg` on every scored key. Without
    one, the results are attached with a warning that they could not be checked."""
    beside = str(Path(metrics_file).resolve().parent / CONFIG_FILE)
    differences = config_differences(cfg, beside)
    if differences is None:
        logger.warning(f"--metrics {metrics_file}: no config.yaml beside it, so it cannot be "
                       "checked that these results were produced under this config")
    elif differences:
        raise CiftInputError(f"--metrics {metrics_file}: produced under another config "
                             f"({beside} differs in {', '.join(differences[:5])})")


def export(args: argparse.Namespace) -> dict[str, str]:
    check_entry_target(args.output, force=args.force)  # before any work
    trained = load_config(args.config_file, args.opts)
    cfg, model, state = load_inference_model(trained, trust=args.trust_checkpoint, device="cpu")
    entry_cfg = trained.clone()  # the training device, not the CPU the export runs on
    entry_cfg.defrost()
    entry_cfg.MODEL.HEADS.NUM_CLASSES = cfg.MODEL.HEADS.NUM_CLASSES
    entry_cfg.freeze()
    metrics = None
    if args.metrics:
        try:
            with open(args.metrics) as f:
                metrics = (json.load(f), args.metrics)
        except (OSError, ValueError) as err:
            raise CiftInputError(f"--metrics {args.metrics}: cannot read JSON ({err})") from None
        check_metrics_config(entry_cfg, args.metrics)
    else:
        metrics = run_metrics(cfg.MODEL.WEIGHTS, entry_cfg)
        if metrics is None:
            logger.warning(f"no metrics.json: {cfg.MODEL.WEIGHTS} is not the last checkpoint "
                           "of a run with protocol_results.json under this config "
                           "(give --metrics FILE)")
    onnx_bytes = None
    if args.onnx:
        from cift.export.onnx_export import check_parity, export_onnx

        size = tuple(cfg.INPUT.SIZE_TEST)
        onnx_bytes = export_onnx(model, size, metadata={
            "cift.meta_architecture": cfg.MODEL.META_ARCHITECTURE})
        diff = check_parity(model, onnx_bytes, size)
        logger.info(f"ONNX: onnx.checker passed; max |onnxruntime - torch| on normalised "
                    f"features = {diff:.2e}")
    return write_entry(entry_cfg, state, args.output, force=args.force, metrics=metrics,
                       onnx_bytes=onnx_bytes)


def run(argv: list[str] | None = None) -> int:
    try:
        args = argument_parser().parse_intermixed_args(argv)
        written = export(args)
    except (CiftInputError, CiftJobError) as err:  # a job error: an ONNX parity mismatch
        return print_input_error(err)
    for key in ("weights", "onnx", "config", "metrics"):
        if key in written:
            print(f"{key:8s} {written[key]}")
    print(f"sha256   {written['sha256']}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    sys.exit(run())

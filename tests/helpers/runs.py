"""Tiny end-to-end runs through projects/CIFT/train_net.py: the overrides that make a run take a
few seconds on a CPU, the loaded script, and its argument parser and CLI entry."""
from __future__ import annotations

from pathlib import Path

from helpers import DEMO, load_script

# A few seconds per run: ResNet-18 on 32x16 images, 1 iteration per epoch, 2 trials (the LR
# steps after epoch 1: the schema wants SOLVER.STEPS within SOLVER.MAX_EPOCH).
TINY = ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
        "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]",
        "DATASETS.SYNTHETIC.NUM_IDS", "12", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "10",
        "DATASETS.SYNTHETIC.TEST_IDS", "4", "DATASETS.SYNTHETIC.VAL_IDS", "2",
        "SOLVER.IMS_PER_BATCH", "16", "SOLVER.ITERS_PER_EPOCH", "1", "SOLVER.MAX_EPOCH", "2",
        "SOLVER.STEPS", "[1]", "SOLVER.WARMUP_EPOCHS", "1", "SOLVER.CHECKPOINT_PERIOD", "1",
        "SOLVER.LOG_PERIOD", "100",
        "TEST.EVAL_PERIOD", "2", "TEST.SYSU.TRIALS", "2", "DATALOADER.NUM_WORKERS", "0"]

train_net = load_script("projects/CIFT/train_net.py")


def args(*extra: str, out: Path, config: str = DEMO, flags=()):
    """train_net's parsed arguments for a tiny run of `config` writing to `out`."""
    argv = ["--config-file", config, *flags, *TINY, "OUTPUT_DIR", str(out), *extra]
    return train_net.default_argument_parser().parse_args(argv)


def run_cli(*argv: str) -> int:
    """train_net's command line, in this process; returns its exit code."""
    return train_net.run(list(argv))

"""Job set-up shared by train_net.py and the tests: config, input checks, fastreid setup."""
from __future__ import annotations

import argparse
import os

import torch
from fastreid.engine import default_setup
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..config import load_config
from ..data.build import load_dataset
from ..errors import CiftInputError
from ..evaluation.retrieval import check_retrieval
from .recipe_checks import check_recipe_inputs
from .resume import check_resume
from .schedule import check_schedule


def check_inputs(cfg, eval_only: bool = False) -> None:
    """Fail early, before anything is written to OUTPUT_DIR, on inputs that cannot work:
    a CUDA device without a GPU, missing weights, bad TEST.RETRIEVAL settings, a data set that
    does not parse."""
    device = torch.device(cfg.MODEL.DEVICE)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CiftInputError(f"MODEL.DEVICE {cfg.MODEL.DEVICE!r}: no GPU is visible "
                             "(use MODEL.DEVICE cpu)")
    if cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise CiftInputError(f"MODEL.WEIGHTS {cfg.MODEL.WEIGHTS}: file not found")
    if eval_only and not cfg.MODEL.WEIGHTS:
        raise CiftInputError("--eval-only needs MODEL.WEIGHTS (a checkpoint to evaluate)")
    check_retrieval(cfg)
    names = list(cfg.DATASETS.TESTS) + ([] if eval_only else list(cfg.DATASETS.NAMES))
    for name in dict.fromkeys(names):
        load_dataset(cfg, name)
    check_recipe_inputs(cfg, eval_only=eval_only)


def setup(args: argparse.Namespace):
    """Config from --config-file and KEY VALUE options, checked, then fastreid's default setup
    (logger, environment info, config.yaml in OUTPUT_DIR)."""
    cfg = load_config(args.config_file, args.opts)
    check_inputs(cfg, eval_only=args.eval_only)
    if not args.eval_only:
        check_schedule(cfg)
    if getattr(args, "resume", False):
        check_resume(cfg, comm.get_world_size())
    default_setup(cfg, args)
    # fastreid configures its own "fastreid" logger only; cift's messages (the protocol
    # tables among them) go to the same console and log file.
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="cift", abbrev_name="cift")
    if cfg.SEED >= 0:
        # after default_setup, which seeds randomly; the sampler's shared seed follows numpy's
        seed_all_rng(cfg.SEED + comm.get_rank())
    return cfg

"""Job set-up shared by train_net.py and the tests: config, input checks, fastreid setup."""
from __future__ import annotations

import argparse
import logging
import os

import torch
from fastreid.engine import default_setup
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng

from ..config import load_config
from ..data.build import load_dataset
from ..errors import CiftInputError
from ..evaluation.retrieval import check_retrieval
from .recipe_checks import check_recipe_inputs
from .resume import check_resume
from .schedule import check_schedule

logger = logging.getLogger(__name__)


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


def eval_output_dir(cfg) -> str:
    """Where --eval-only writes its log, config.yaml and results: OUTPUT_DIR/eval/<weights file
    name without extension>, never OUTPUT_DIR itself, which holds the training run (whose
    protocol_results.json belongs to its last checkpoint). An empty OUTPUT_DIR stays empty
    (nothing written)."""
    if not cfg.OUTPUT_DIR:
        return ""
    stem = os.path.splitext(os.path.basename(cfg.MODEL.WEIGHTS))[0] or "weights"
    return os.path.join(cfg.OUTPUT_DIR, "eval", stem)


def device_given(config_file: str, opts) -> bool:
    """Whether the config file (with its _BASE_ chain) or the KEY VALUE options set
    MODEL.DEVICE, rather than leaving it to the default."""
    from fastreid.config import get_cfg

    from ..config import add_cift_config

    probe = add_cift_config(get_cfg())
    probe.MODEL.DEVICE = ""  # a value no config sets
    if config_file:
        probe.merge_from_file(config_file)
    probe.merge_from_list(list(opts or []))
    return probe.MODEL.DEVICE != ""


def resolve_default_device(cfg, args: argparse.Namespace) -> tuple:
    """(cfg, fell_back): without a visible GPU and with no MODEL.DEVICE in the config file or
    options, MODEL.DEVICE is cpu and fell_back is True (setup logs a warning); otherwise cfg
    as it is (the default is then cuda, as fastreid's)."""
    if torch.cuda.is_available() or device_given(args.config_file, args.opts):
        return cfg, False
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg, True


def setup(args: argparse.Namespace):
    """Config from --config-file and KEY VALUE options, checked, then fastreid's default setup
    (logger, environment info, config.yaml in OUTPUT_DIR; OUTPUT_DIR/eval/<weights> for
    --eval-only)."""
    cfg = load_config(args.config_file, args.opts)
    cfg, cpu_fallback = resolve_default_device(cfg, args)
    check_inputs(cfg, eval_only=args.eval_only)
    if not args.eval_only:
        check_schedule(cfg)
    if getattr(args, "resume", False):
        check_resume(cfg, comm.get_world_size())
    if args.eval_only:
        cfg.defrost()
        cfg.OUTPUT_DIR = eval_output_dir(cfg)
        cfg.freeze()
    default_setup(cfg, args)  # cift's messages reach its logger's handlers (log_forwarding)
    if cpu_fallback:
        logger.warning("no GPU is visible: MODEL.DEVICE defaults to cpu, so this job runs on "
                       "the CPU (set MODEL.DEVICE to choose explicitly)")
    if cfg.SEED >= 0:
        # after default_setup, which seeds randomly; the sampler's shared seed follows numpy's
        seed = cfg.SEED + comm.get_rank()
        seed_all_rng(seed)
        logger.info(f"SEED {cfg.SEED}: python, numpy and torch seeded with {seed} (SEED + rank "
                    f"{comm.get_rank()}), in place of the generated seed logged above")
    else:
        logger.info(f"SEED {cfg.SEED}: the generated random seed logged above is in force")
    return cfg

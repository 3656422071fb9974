"""Job set-up shared by train_net.py and the tests: config, input checks, fastreid setup."""
from __future__ import annotations

import argparse
import logging
import os
import re

import torch
from fastreid.engine import default_setup
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng

from ..atomic import remove_stale_temporaries
from ..config import keys_set, load_config
from ..console import quiet_console
from ..errors import CiftInputError
from .output_lock import lock_output_dir
from .validate import validate

logger = logging.getLogger(__name__)


def check_inputs(cfg, eval_only: bool = False, world_size: int | None = None,
                 trust: bool = False, resume: bool = False) -> None:
    """Fail early, before anything is written to OUTPUT_DIR, on inputs that cannot work
    (config values were checked when the config was loaded): every check of
    `cift.engine.validate.CHECKS` (the GPU, batches against the world size, data sets and
    their images, ImageNet weights, the checkpoint, a resume's batch size). `world_size`
    defaults to the running job's."""
    validate(cfg, eval_only=eval_only, trust=trust, resume=resume,
             world_size=comm.get_world_size() if world_size is None else world_size)
    if comm.is_main_process():  # held by the job's main process until it exits (output_lock)
        lock_output_dir(eval_output_dir(cfg) if eval_only else cfg.OUTPUT_DIR)


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
    return "MODEL.DEVICE" in keys_set(config_file, opts)


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


def check_launch_arguments(args: argparse.Namespace) -> None:
    """train_net's own flags (the config is checked when it is loaded): a config file, and
    process counts a launch can start.

    Raises:
        CiftInputError: one line naming the flag.
    """
    if not args.config_file:
        raise CiftInputError("--config-file: required (e.g. --config-file "
                             "configs/Demo/baseline_synthetic.yml)")
    for flag, value in (("--num-gpus", args.num_gpus), ("--num-machines", args.num_machines)):
        if value < 1:
            raise CiftInputError(f"{flag} {value}: expected an int >= 1")
    if not 0 <= args.machine_rank < args.num_machines:
        raise CiftInputError(f"--machine-rank {args.machine_rank}: expected an int in "
                             f"0..{args.num_machines - 1} (--num-machines {args.num_machines})")
    url = args.dist_url
    if url != "auto" and not re.fullmatch(r"(tcp://[^:/\s]+:\d{1,5}|file://\S+|env://)", url):
        raise CiftInputError(f"--dist-url {url!r}: expected auto, tcp://HOST:PORT, "
                             "file:///PATH or env://")


def check_job(args: argparse.Namespace, world_size: int):
    """The config of a job's command line, checked for `world_size` processes (what the
    launcher runs once before it spawns them); returns the config."""
    cfg, _ = resolve_default_device(load_config(args.config_file, args.opts), args)
    check_inputs(cfg, eval_only=args.eval_only, world_size=world_size,
                 trust=getattr(args, "trust_checkpoint", False),
                 resume=getattr(args, "resume", False))
    return cfg


def setup(args: argparse.Namespace):
    """Config from --config-file and KEY VALUE options, checked (unless the launcher already
    did: `args.inputs_checked`), stale temporaries of killed writers removed from OUTPUT_DIR,
    then fastreid's default setup (logger, environment info, config.yaml in OUTPUT_DIR;
    OUTPUT_DIR/eval/<weights> for --eval-only)."""
    cfg = load_config(args.config_file, args.opts)
    cfg, cpu_fallback = resolve_default_device(cfg, args)
    if not getattr(args, "inputs_checked", False):
        check_inputs(cfg, eval_only=args.eval_only, trust=getattr(args, "trust_checkpoint", False),
                     resume=getattr(args, "resume", False))
    if args.eval_only:
        cfg.defrost()
        cfg.OUTPUT_DIR = eval_output_dir(cfg)
        cfg.freeze()
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        remove_stale_temporaries(cfg.OUTPUT_DIR)
    quiet_console(cfg.OUTPUT_DIR)  # before default_setup: its dumps go to log.txt only
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

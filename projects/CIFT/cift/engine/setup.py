"""Job set-up shared by train_net.py and the tests: config, input checks, fastreid setup."""
from __future__ import annotations

import argparse

from fastreid.engine import default_setup
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..config import load_config
from .checkpoint import remove_stale_temporaries
from .validate import validate


def check_inputs(cfg, eval_only: bool = False, world_size: int | None = None,
                 trust: bool = False) -> None:
    """Fail early, before anything is written to OUTPUT_DIR, on inputs that cannot work:
    every check of `cift.engine.validate.CHECKS` (config values, registry names, data sets and
    their images, the checkpoint). `world_size` defaults to the running job's."""
    validate(cfg, eval_only=eval_only, trust=trust,
             world_size=comm.get_world_size() if world_size is None else world_size)


def check_job(args: argparse.Namespace, world_size: int):
    """The config of a job's command line, checked for `world_size` processes (what the
    launcher runs once before it spawns them); returns the config."""
    cfg = load_config(args.config_file, args.opts)
    check_inputs(cfg, eval_only=args.eval_only, world_size=world_size,
                 trust=getattr(args, "trust_checkpoint", False))
    return cfg


def setup(args: argparse.Namespace):
    """Config from --config-file and KEY VALUE options, checked (unless the launcher already
    did: `args.inputs_checked`), stale temporaries of killed writers removed from OUTPUT_DIR,
    then fastreid's default setup (logger, environment info, config.yaml in OUTPUT_DIR)."""
    cfg = load_config(args.config_file, args.opts)
    if not getattr(args, "inputs_checked", False):
        check_inputs(cfg, eval_only=args.eval_only, trust=getattr(args, "trust_checkpoint", False))
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        remove_stale_temporaries(cfg.OUTPUT_DIR)
    default_setup(cfg, args)
    # fastreid configures its own "fastreid" logger only; cift's messages (the protocol
    # tables among them) go to the same console and log file.
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="cift", abbrev_name="cift")
    if cfg.SEED >= 0:
        # after default_setup, which seeds randomly; the sampler's shared seed follows numpy's
        seed_all_rng(cfg.SEED + comm.get_rank())
    return cfg

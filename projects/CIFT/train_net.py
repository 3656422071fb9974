#!/usr/bin/env python
"""Train or evaluate a VI-ReID model (VIBaseline, CIFT) with fastreid.

    python projects/CIFT/train_net.py --config-file configs/Demo/baseline_synthetic.yml
    python projects/CIFT/train_net.py --config-file FILE --eval-only MODEL.WEIGHTS model.pth
    python projects/CIFT/train_net.py --config-file FILE --eval-only MODEL.WEIGHTS m.safetensors
    python projects/CIFT/train_net.py --config-file FILE --resume
    python projects/CIFT/train_net.py --config-file FILE --num-gpus 4
    torchrun --nproc-per-node 4 projects/CIFT/train_net.py --config-file FILE
"""
import sys

import cift  # noqa: F401  first: patches fastreid for torch 2 and registers everything

# isort: split
from fastreid.engine import default_argument_parser

from cift.arguments import one_line_errors
from cift.config import load_config
from cift.engine import CIFTTrainer
from cift.engine.checkpoint import (
    AtomicCheckpointer,
    add_trust_argument,
    num_classes_in_checkpoint,
)
from cift.engine.interrupt import reports_interruptions
from cift.engine.launch import launch, started_by_torchrun
from cift.engine.setup import check_job, check_launch_arguments, setup
from cift.errors import CiftInputError, CiftJobError, print_input_error


def argument_parser():
    """fastreid's arguments plus --trust-checkpoint; usage errors in one line."""
    parser = one_line_errors(default_argument_parser())
    add_trust_argument(parser)
    return parser


def main(args):
    cfg = setup(args)
    trust = getattr(args, "trust_checkpoint", False)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        if cfg.MODEL.HEADS.NUM_CLASSES == 0:
            cfg.MODEL.HEADS.NUM_CLASSES = num_classes_in_checkpoint(cfg.MODEL.WEIGHTS, trust)
        cfg.freeze()
        model = CIFTTrainer.build_model(cfg)
        # strict: evaluating a model whose weights do not all fit would score random layers
        AtomicCheckpointer(model, strict=True, trust=trust).load(cfg.MODEL.WEIGHTS)
        return CIFTTrainer.test(cfg, model)
    trainer = CIFTTrainer(cfg)
    trainer.checkpointer.trust = trust
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


@reports_interruptions  # SIGINT / SIGTERM: one line, exit 128 + signal number
def run(argv=None) -> int:
    try:
        args = argument_parser().parse_args(argv)
        check_launch_arguments(args)
        world_size = args.num_gpus * args.num_machines
        if world_size > 1 and not started_by_torchrun():
            # once, before any process is spawned; the workers then skip the checks
            cfg = check_job(args, world_size)
            args.inputs_checked = True
        else:
            cfg = load_config(args.config_file, args.opts)  # for DIST_TIMEOUT_S
        launch(main, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,),
               timeout_s=cfg.DIST_TIMEOUT_S)
    except (CiftInputError, CiftJobError) as err:
        return print_input_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(run())

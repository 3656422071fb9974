"""Test helper (run as a script): train_net's training path plus a hook that appends every
iteration's raw losses to $LOSSES_FILE (one JSON line each, exact floats) and, when
$KILL_AFTER is set, kills its own process with SIGKILL after that iteration."""
import json
import os
import signal
import sys

import cift  # noqa: F401  patches fastreid, registers everything

# isort: split
from fastreid.engine import default_argument_parser
from fastreid.engine.train_loop import HookBase

from cift.engine import CIFTTrainer
from cift.engine.setup import setup


class RecordLosses(HookBase):
    def __init__(self, path: str, kill_after: int) -> None:
        # held open for the whole run: the driver is killed mid-run, as a real job would be
        self.file, self.kill_after = open(path, "a"), kill_after  # noqa: SIM115

    def after_step(self) -> None:
        storage = self.trainer.storage
        row = {k: h.latest() for k, h in storage.histories().items() if "loss" in k}
        self.file.write(json.dumps({"iteration": self.trainer.iter, **row}) + "\n")
        self.file.flush()
        if self.trainer.iter == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    args = default_argument_parser().parse_args(sys.argv[1:])
    cfg = setup(args)
    trainer = CIFTTrainer(cfg)
    trainer.register_hooks([RecordLosses(os.environ["LOSSES_FILE"],
                                         int(os.environ.get("KILL_AFTER", "-1")))])
    trainer.resume_or_load(resume=args.resume)
    trainer.train()


if __name__ == "__main__":
    main()

"""Test helper (run as a script): train_net's training path plus a hook that appends every
iteration's raw losses to $LOSSES_FILE (one JSON line each, exact floats) and, when $STOP_AT
is `iteration:N` or `epoch:N`, sends $STOP_SIGNAL (KILL, TERM or INT) to its own process after
iteration N's hooks or after epoch N's (so after that epoch's checkpoint). SIGINT and SIGTERM
end it as train_net's entry point does: one line, exit status 128 + the signal number."""
import json
import os
import signal
import sys

import cift  # noqa: F401  patches fastreid, registers everything

# isort: split
from fastreid.engine import default_argument_parser
from fastreid.engine.train_loop import HookBase

from cift.engine import CIFTTrainer
from cift.engine.interrupt import reports_interruptions
from cift.engine.setup import setup


class RecordLosses(HookBase):
    def __init__(self, path: str, stop_at: str, signum: int) -> None:
        # held open for the whole run: the driver is killed mid-run, as a real job would be
        self.file = open(path, "a")  # noqa: SIM115
        kind, _, number = stop_at.partition(":")
        self.stop_at, self.signum = (kind, int(number or -1)), signum

    def after_step(self) -> None:
        storage = self.trainer.storage
        row = {k: h.latest() for k, h in storage.histories().items() if "loss" in k}
        self.file.write(json.dumps({"iteration": self.trainer.iter, **row}) + "\n")
        self.file.flush()
        self.stop_if(("iteration", self.trainer.iter))

    def after_epoch(self) -> None:
        self.stop_if(("epoch", self.trainer.epoch))

    def stop_if(self, point: tuple[str, int]) -> None:
        if point == self.stop_at:
            os.kill(os.getpid(), self.signum)


@reports_interruptions
def main(argv: list[str]) -> int:
    args = default_argument_parser().parse_args(argv)
    cfg = setup(args)
    trainer = CIFTTrainer(cfg)
    signum = signal.Signals[f"SIG{os.environ.get('STOP_SIGNAL', 'KILL')}"]
    trainer.register_hooks([RecordLosses(os.environ["LOSSES_FILE"],
                                         os.environ.get("STOP_AT", ""), signum)])
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

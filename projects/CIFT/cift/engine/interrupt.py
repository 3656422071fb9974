"""SIGINT and SIGTERM end a job in one line; during training, after the current iteration and
with a checkpoint that `--resume` continues from exactly (`cift.engine.epochs`).

Two modes, one handler:

- :func:`reports_interruptions` (the entry point's `run`): either signal raises
  :class:`Interrupted` at once, which the entry point prints as one `interrupted: ...` line with
  exit status 128 + the signal number (130, 143), as a shell reports it. A launcher's parent
  passes the signal on to the processes it started first.
- :meth:`StopSignals.deferred` (the training loop): the first signal is only recorded; the loop
  asks :attr:`StopSignals.requested` after every iteration, writes a checkpoint and raises
  Interrupted. A second signal raises at once (no checkpoint).

Interrupted derives from KeyboardInterrupt, so that code catching Exception lets it through and
data-loader workers (which inherit the handler) treat it as the end of the job.
"""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the job; the message says where and what was kept."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = int(signum)
        super().__init__(message or f"{signal_name(signum)} received")

    @property
    def status(self) -> int:
        """The exit status a shell gives a process ended by the signal: 128 + its number."""
        return 128 + self.signum


class StopSignals:
    """This process's handler of SIGINT and SIGTERM (installed from the main thread only)."""

    def __init__(self) -> None:
        self.deferring = False
        self.requested: int | None = None  # the signal received while deferring

    def handle(self, signum: int, frame) -> None:
        # nothing is printed here: a handler that writes to a stream the interrupted code was
        # writing to fails ("reentrant call"); the loop reports the request
        if self.deferring and self.requested is None:
            self.requested = signum
            return
        for child in multiprocessing.active_children():  # a launcher's worker processes
            with contextlib.suppress(OSError):
                os.kill(child.pid, signum)
        raise Interrupted(signum)

    @contextlib.contextmanager
    def installed(self, deferring: bool) -> Iterator[StopSignals]:
        """Handle both signals (`deferring` or not) inside the block; the previous handlers and
        mode come back after it. Outside the main thread (where handlers cannot be set) the
        block runs with the handlers as they are."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        mode = (self.deferring, self.requested)
        self.deferring, self.requested = deferring, None
        for s in STOP_SIGNALS:
            signal.signal(s, self.handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.deferring, self.requested = mode

    def deferred(self) -> contextlib.AbstractContextManager[StopSignals]:
        """The training loop's block: a signal is recorded, for the loop to stop cleanly."""
        return self.installed(deferring=True)


STOP = StopSignals()


def interruption_status(err: KeyboardInterrupt) -> int:
    """Print the one `interrupted: ...` line of `err` on stderr; return the exit status."""
    if not isinstance(err, Interrupted):
        err = Interrupted(signal.SIGINT)
    print(f"interrupted: {err}", file=sys.stderr)
    return err.status


def reports_interruptions(run: Callable[..., int]) -> Callable[..., int]:
    """Decorate an entry point's `run(argv) -> exit status`: SIGINT and SIGTERM stop it with one
    line and status 128 + the signal number, not a traceback or a silent death."""

    @functools.wraps(run)
    def guarded(*args, **kwargs) -> int:
        try:
            with STOP.installed(deferring=False):
                return run(*args, **kwargs)
        except KeyboardInterrupt as err:
            return interruption_status(err)

    return guarded

"""What a job shows on its console; its log file keeps everything.

fastreid's `setup_logger` gives the "fastreid" logger a console handler (stdout, main process)
and a file handler (OUTPUT_DIR/log.txt), and cift's messages reach both (`log_forwarding`).
:func:`quiet_console` filters the console handler only, so that a run reads as a header, a
progress display, the evaluation and the protocol table (`cift.engine.progress_hook` writes the
first two), while log.txt still holds fastreid's environment report, command line, config and
model dumps, data set tables, per-iteration metrics and checkpoint notes.
"""
from __future__ import annotations

import logging
import os

__all__ = ["ConsoleFilter", "console_handlers", "quiet_console", "shown_on_console"]

# fastreid loggers whose INFO records stay on the console: inference progress with its ETA.
FASTREID_SHOWN = ("fastreid.evaluation.evaluator",)
# cift INFO records that the header (cift.engine.progress_hook) already says, or that refer to
# file-only records ("the generated seed logged above"): (logger, start of the message).
CIFT_FILE_ONLY = (("cift.engine.setup", "SEED "),
                  ("cift.engine.trainer", "iterations per epoch"),
                  ("cift.engine.epochs", "Starting training from epoch"))


def _within(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


def shown_on_console(record: logging.LogRecord) -> bool:
    """Whether a log record goes to the console: every warning and error, cift's messages but
    those of `CIFT_FILE_ONLY`, and fastreid's `FASTREID_SHOWN`; the rest is for log.txt."""
    if record.levelno >= logging.WARNING:
        return True
    if _within(record.name, "cift"):
        return not any(record.name == name and str(record.msg).startswith(start)
                       for name, start in CIFT_FILE_ONLY)
    return any(_within(record.name, name) for name in FASTREID_SHOWN)


class ConsoleFilter(logging.Filter):
    """The console handler's filter (:func:`shown_on_console`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return shown_on_console(record)


def console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The console handlers fastreid's setup_logger gave `logger`: plain StreamHandlers whose
    stream is not a file on disk (its log.txt handler is a StreamHandler over an opened file;
    subclasses, such as pytest's capture handlers, are someone else's)."""
    def to_file(handler: logging.StreamHandler) -> bool:
        name = getattr(handler.stream, "name", None)
        return isinstance(name, str) and os.path.isfile(name)

    return [h for h in logger.handlers if type(h) is logging.StreamHandler and not to_file(h)]


def quiet_console(output_dir: str) -> None:
    """Set up fastreid's logger as `fastreid.engine.default_setup` is about to (the same
    cached `setup_logger` call, so that it gets these very handlers) and filter its console
    handlers with :class:`ConsoleFilter`, once each, before default_setup logs its dumps."""
    from fastreid.utils import comm
    from fastreid.utils.logger import setup_logger

    # default_setup's own call, argument for argument: setup_logger is an lru_cache
    fastreid_logger = setup_logger(output_dir, distributed_rank=comm.get_rank())
    for handler in console_handlers(fastreid_logger):
        if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())

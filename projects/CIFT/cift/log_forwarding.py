"""cift's log messages (the protocol tables among them) go wherever fastreid's go.

fastreid's `setup_logger()` (called by its `default_setup` and `DefaultTrainer`) configures
the "fastreid" logger only, so the messages of the "cift.*" loggers would reach no handler
in a job set up the fastreid way. One handler on the "cift" logger hands each record to the
handlers of the "fastreid" logger once that logger is configured (its console on the main
process, its log.txt on every rank).
"""
from __future__ import annotations

import logging

__all__ = ["FastreidHandlers", "forward_to_fastreid"]


class FastreidHandlers(logging.Handler):
    """Emit a record through the handlers of the "fastreid" logger, when it has any and does
    not propagate (that is, fastreid's setup_logger configured it; otherwise the record
    already propagates to the root logger like any other)."""

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger("fastreid")
        if target.propagate:
            return
        # a handler on the root logger too (pytest's capture) gets the record by propagation
        reached = set(logging.getLogger().handlers) if logging.getLogger("cift").propagate else ()
        for handler in target.handlers:
            if handler not in reached and record.levelno >= handler.level:
                handler.handle(record)


def forward_to_fastreid() -> None:
    """Install the handler on the "cift" logger once, and let its INFO messages through (as
    fastreid's setup_logger does for its own logger)."""
    log = logging.getLogger("cift")
    if not any(isinstance(h, FastreidHandlers) for h in log.handlers):
        log.addHandler(FastreidHandlers())
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)

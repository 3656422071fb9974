"""Shared test set-up: `import cift` first, so fastreid is patched before any test imports it."""
import logging

import cift  # noqa: F401

# fastreid's setup_logger is cached and keeps the console stream of the first test that ran
# train_net; under pytest's capture that stream is closed later. Ignore write failures of
# such stale handlers instead of printing "--- Logging error ---" into later tests' stderr.
logging.raiseExceptions = False

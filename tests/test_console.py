"""A run's console shows its header, progress, evaluation and table; log.txt keeps the rest
(fastreid's environment report, config and model dumps, data set tables, metric lines)."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

from cift.console import console_handlers, shown_on_console
from helpers import DEMO, ROOT
from helpers.runs import TINY


def record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_fastreid_info_stays_in_the_log_file_but_inference_progress_and_warnings():
    for name, message in (("fastreid", "Environment info:\n..."),
                          ("fastreid", "Running with full config:\n..."),
                          ("fastreid.engine.defaults", "Model:\nCIFT(...)"),
                          ("fastreid.data.datasets.bases", "=> Loaded SyntheticVI ..."),
                          ("fastreid.utils.events", " eta: 0:01:00  iter: 19"),
                          ("fastreid.utils.checkpoint", "Saving checkpoint to model_final.pth")):
        assert not shown_on_console(record(name, message)), message
    assert shown_on_console(record("fastreid.evaluation.evaluator", "Inference done 11/89"))
    assert shown_on_console(record("fastreid.utils.checkpoint", "missing keys", logging.WARNING))


def test_cift_messages_show_but_those_the_header_says():
    assert shown_on_console(record("cift.engine.trainer", "\nSyntheticVI protocol ..."))
    assert shown_on_console(record("cift.engine.epochs", "logs/x: the run is complete"))
    assert shown_on_console(record("cift.engine.progress_hook", "training CIFT on ..."))
    for name, message in (("cift.engine.setup", "SEED 0: python, numpy and torch seeded"),
                          ("cift.engine.trainer", "iterations per epoch: min 4, ..."),
                          ("cift.engine.epochs", "Starting training from epoch 0")):
        assert not shown_on_console(record(name, message)), message
    assert shown_on_console(record("cift.engine.setup", "SEED ...", logging.WARNING))


class CaptureHandler(logging.StreamHandler):
    """A StreamHandler of someone else's (pytest attaches its capture handlers to fastreid's
    logger, which does not propagate)."""


def test_console_handlers_leave_file_and_capture_handlers_alone(tmp_path):
    logger = logging.getLogger("tests.console")
    console = logging.StreamHandler(io.StringIO())
    with open(tmp_path / "log.txt", "w") as log_file:
        to_file = logging.StreamHandler(log_file)  # how fastreid's setup_logger writes log.txt
        file_handler = logging.FileHandler(tmp_path / "other.txt")
        capture = CaptureHandler(io.StringIO())
        logger.handlers = [console, to_file, file_handler, capture]
        try:
            assert console_handlers(logger) == [console]
        finally:
            logger.handlers = []
            file_handler.close()


def test_a_run_prints_its_header_first_and_its_table_last(datasets_root, tmp_path):
    """A real train_net run, its stdout and stderr piped (not a terminal)."""
    out = tmp_path / "run"
    env = {**os.environ, "FASTREID_DATASETS": str(datasets_root),
           "PYTHONPATH": str(ROOT / "projects" / "CIFT")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "projects/CIFT/train_net.py"), "--config-file", DEMO,
         *TINY, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(out)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.rstrip().splitlines()
    assert "training VIBaseline on SyntheticVI, seed 0" in lines[0]
    assert lines[1].strip().startswith("ResNet-18 from scratch, 32x16 images")
    assert "2 iterations (2 epochs) on cpu" in lines[2]
    assert f"{out / 'log.txt'}" in lines[3]
    # the tiny test set has 4 identities: R5 = R10 = R20 = 100, explained under the table
    assert lines[-1].startswith("R5 = R10 = R20 = 100 in every setting")
    assert lines[-2].startswith("| indoor-multi")
    assert any("trained 2 iterations in" in line for line in lines)
    log = (out / "log.txt").read_text()
    for dump in ("Environment info:", "Running with full config:", "Model:\n",
                 "Command line arguments:", "total_loss"):
        assert dump in log and dump not in result.stdout, dump
    assert "training VIBaseline on SyntheticVI" in log  # the header is logged too

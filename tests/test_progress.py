"""The long steps show a progress bar on a terminal, and elsewhere a line every LINE_PERIOD_S
seconds (nothing for a step shorter than that)."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import cift.progress
from cift.analysis.toy_experiment import ToySettings, run_toy
from cift.data.synthetic import generate_synthetic_sysu
from cift.evaluation.tasks import run_sysu_protocol


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def synthetic_items(tmp_path):
    from cift.data.datasets.synthetic_vi import SyntheticVI

    data = SyntheticVI(root=str(tmp_path), num_ids=6, images_per_camera=10, test_ids=3,
                       val_ids=1)
    return data.query, data.gallery


STEPS = {
    "generation": lambda tmp: generate_synthetic_sysu(tmp / "SyntheticVI", num_ids=3,
                                                      images_per_camera=1, test_ids=1,
                                                      val_ids=1),
    "scoring": lambda tmp: (lambda q, g: run_sysu_protocol(
        np.random.default_rng(0).normal(size=(len(q), 8)),
        np.random.default_rng(1).normal(size=(len(g), 8)), q, g, trials=2))(
        *synthetic_items(tmp)),
    "toy": lambda tmp: run_toy([0.5], [0.5], reps=2, settings=ToySettings(), readings=False),
}
SHOWN = {"generation": "SyntheticVI: generating", "scoring": "protocol all-single",
         "toy": "toy experiment"}


@pytest.mark.parametrize("step", list(STEPS))
def test_progress_is_a_bar_on_a_terminal_and_periodic_lines_elsewhere(step, tmp_path,
                                                                       monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    STEPS[step](tmp_path / "tty")
    assert SHOWN[step] in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    STEPS[step](tmp_path / "pipe")
    assert piped.getvalue() == ""  # shorter than LINE_PERIOD_S
    monkeypatch.setattr(cift.progress, "LINE_PERIOD_S", 0.0)
    STEPS[step](tmp_path / "pipe-lines")
    lines = piped.getvalue().splitlines()
    assert any(SHOWN[step] in line for line in lines)
    assert all("elapsed" in line for line in lines)
    assert "\r" not in piped.getvalue()


class Clock:
    """time.monotonic's stand-in: `now` seconds, set by the test."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def test_periodic_lines_count_elapsed_time_and_eta(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(cift.progress, "time", clock)
    display = cift.progress.progress(desc="training", total=40, unit="it", initial=4)
    clock.now = 29.0
    display.update(5)  # before LINE_PERIOD_S: silent
    assert capsys.readouterr().err == ""
    clock.now = 40.0
    display.update()  # due: 6 iterations since the start (4 to 10) in 40 s, 30 left take 200 s
    for _ in range(4):
        display.update()  # too soon after it
    assert capsys.readouterr().err == ("training: 10/40 it (25%), 40 s elapsed, about 3.3 min "
                                       "left\n")
    clock.now = 200.0
    display.n = 40
    display.close()
    display.close()
    display.update()
    assert capsys.readouterr().err == "training: 40/40 it (100%), 3.3 min elapsed\n"


def test_a_display_closed_at_its_last_line_writes_it_once(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(cift.progress, "time", clock)
    display = cift.progress.progress(range(2), desc="scoring", unit="trial")
    clock.now = 31.0
    assert list(display) == [0, 1]
    assert capsys.readouterr().err.splitlines() == [
        "scoring: 1/2 trial (50%), 31 s elapsed, about 31 s left",
        "scoring: 2/2 trial (100%), 31 s elapsed"]

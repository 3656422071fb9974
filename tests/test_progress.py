"""The long steps show a progress bar on a terminal and print nothing elsewhere."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

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
def test_progress_shows_on_a_terminal_only(step, tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    STEPS[step](tmp_path / "tty")
    assert SHOWN[step] in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    STEPS[step](tmp_path / "pipe")
    assert piped.getvalue() == ""

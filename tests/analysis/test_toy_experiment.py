"""The toy experiment (supplementary §1) in reduced size: calibration reaches its targets, the
trends are monotone, runs are reproducible, and the command writes its files."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from cift.analysis.toy_experiment import ToySettings, calibrate, crossing, run_toy
from helpers import load_script

SMALL = ToySettings(num_ids=4, per_id=4, dim=16, bisection_steps=20)
QX, QA = [0.2, 0.5, 0.8], [0.0, 0.3, 0.6, 0.9]


@pytest.fixture(scope="module")
def small_run():
    return run_toy(QX, QA, reps=4, seed=0, settings=SMALL)


def test_calibrate_bisects_a_monotone_quality():
    t = calibrate(lambda t: t ** 2, torch.tensor([0.0, 0.25, 0.81, 2.0]), steps=40, upper=1.0)
    assert t.tolist() == pytest.approx([0.0, 0.5, 0.9, 1.0], abs=1e-8)


def test_crossing_interpolates_the_first_reach():
    assert crossing([0, 1, 2], [0.5, 0.6, 0.9], 0.7) == pytest.approx(1 + 1 / 3)
    assert crossing([0, 1], [0.8, 0.9], 0.7) == 0.0
    assert math.isnan(crossing([0, 1], [0.1, 0.2], 0.7))


def test_calibration_reaches_the_targets(small_run):
    assert small_run.qx.shape == (4, 3) and small_run.qa.shape == (4, 4)
    assert small_run.qy.shape == (4, 3, 4)
    np.testing.assert_allclose(small_run.qx, np.broadcast_to(QX, (4, 3)), atol=1e-3)
    # Q_A moves in steps of 1/16 here: reached at or just above the target
    assert (small_run.qa >= np.asarray(QA) - 1e-9).all()
    assert (small_run.qa <= np.asarray(QA) + 2 / 16 + 1e-9).all()


def test_q_y_grows_with_q_x_and_with_q_a(small_run):
    qy = small_run.qy_mean
    assert (np.diff(qy, axis=0) > 0).all(), qy   # better inputs, better outputs
    assert (np.diff(qy, axis=1) > 0).all(), qy   # better affinities, better outputs
    # the better the affinity, the smaller its error mass and the closer its pair order to 1
    assert (np.diff(small_run.error_mass.mean(0)) < 0).all()
    assert (np.diff(small_run.qa_pairs.mean(0)) > 0).all()
    assert small_run.qa_pairs.mean(0)[0] == pytest.approx(0.5, abs=0.1)  # Q_A 0 ~ chance


def test_runs_are_reproducible_per_seed(small_run):
    again = run_toy(QX, QA, reps=4, seed=0, settings=SMALL)
    np.testing.assert_array_equal(again.qy, small_run.qy)
    other = run_toy(QX, QA, reps=4, seed=1, settings=SMALL)
    assert not np.array_equal(other.qy, small_run.qy)
    # repetition r depends on (seed, r) only: fewer reps give a prefix
    np.testing.assert_array_equal(run_toy(QX, QA, reps=2, seed=0, settings=SMALL).qy,
                                  small_run.qy[:2])


def load_tool():
    return load_script("projects/CIFT/tools/toy_topology.py")


def test_command_writes_csv_figures_and_summary(tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / "toy"
    code = tool.main(["--out", str(out), "--reps", "2", "--grid", "3", "--line-points", "3",
                      "--num-ids", "4", "--per-id", "4", "--dim", "16"])
    assert code == 0
    rows = list(csv.DictReader((out / "toy_topology.csv").read_text().splitlines()))
    assert len(rows) == 9 and {r["reps"] for r in rows} == {"2"}
    assert [float(r["qa_target"]) for r in rows[:3]] == [0.0, 0.5, 1.0]
    line = (out / "toy_topology_line.csv").read_text().splitlines()
    assert len(list(csv.DictReader(line))) == 3
    for name in ("toy_topology_heatmap.png", "toy_topology_surface.png"):
        with Image.open(out / name) as image:
            assert image.size == (640, 520)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["num_ids"] == 4 and summary["reps"] == 2
    assert set(summary["observations"]["line_qa_threshold"]) == {"0.570"}
    printed = capsys.readouterr().out
    assert printed.startswith("toy experiment: 2 repetitions of a 3 x 3 (Q_X, Q_A) grid")
    assert "supplementary: 0.16" in printed
    assert tool.main(["--out", str(out), "--per-id", "1"]) == 2


@pytest.mark.parametrize("flag, value, key", [("--tau", "0", "MODEL.CIFT.TAU_HOM"),
                                              ("--tau", "nan", "MODEL.CIFT.TAU_HOM"),
                                              ("--k", "0", "MODEL.CIFT.TOPK")])
def test_graph_flags_are_checked_as_their_config_keys(tmp_path, capsys, flag, value, key):
    assert load_tool().main(["--out", str(tmp_path / "toy"), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag}" in err and key in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "toy").exists()

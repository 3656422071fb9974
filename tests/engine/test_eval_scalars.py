"""Every evaluation of a training run, the last one included, lands in metrics.json and in the
tensorboard event file, under tags that are the same for VIBaseline and CIFT runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cift.engine.hooks import eval_scalars
from helpers import DEMO_CIFT as CIFT
from helpers.runs import args, train_net

TAG = "eval/SyntheticVI/all-single/mAP"


def metrics_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.json").read_text().splitlines()]


def tensorboard_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = run.glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def test_eval_scalars_share_one_tag_scheme():
    metrics = {"R1": 50.0, "R1_std": 1.0}
    baseline = {"all-single": metrics, "metric": 7.0}
    cift = {"CIFT": {"all-single": metrics}, "CIFT\u2020": {"all-single": {"R1": 40.0}},
            "metric": 7.0}
    assert eval_scalars(baseline, ["SyntheticVI"]) == {
        "metric": 7.0, "eval/SyntheticVI/all-single/R1": 50.0,
        "eval/SyntheticVI/all-single/R1_std": 1.0}
    assert eval_scalars(cift, ["SyntheticVI"]) == {
        "metric": 7.0, "eval/SyntheticVI/all-single/R1": 50.0,
        "eval/SyntheticVI/all-single/R1_std": 1.0,
        "eval_no_transfer/SyntheticVI/all-single/R1": 40.0}
    two = eval_scalars({"A": baseline, "B": baseline}, ["A", "B"])
    assert two["A/metric"] == 7.0 and two["eval/B/all-single/R1"] == 50.0


@pytest.mark.parametrize("config, period", [
    ("baseline", "2"),  # evaluated after the last epoch (after_epoch)
    ("cift", "3"),  # evaluated at the end of training only (after_train)
])
def test_final_evaluation_reaches_metrics_json_and_tensorboard(env, tmp_path, config, period):
    out = tmp_path / config
    extra = ["TEST.EVAL_PERIOD", period, "TEST.TOPOLOGY.ENABLED", "True",
             "TEST.TOPOLOGY.TASKS", "('all-single',)"]
    if config == "cift":
        extra += ["MODEL.CIFT.CRI.SAMPLES", "2"]
    results = train_net.main(args(*extra, out=out, **({"config": CIFT} if config == "cift"
                                                       else {})))
    main = results["CIFT"] if config == "cift" else results
    expected = main["all-single"]["mAP"]
    last_iteration = 1  # TINY: 2 epochs of 1 iteration
    records = metrics_records(out)
    with_eval = [r for r in records if TAG in r]
    assert len(with_eval) == 1 and with_eval[0]["iteration"] == last_iteration
    assert with_eval[0][TAG] == pytest.approx(expected)
    assert with_eval[0]["metric"] == pytest.approx(results["metric"])
    topology = [k for r in records for k in r if k.startswith("topology/SyntheticVI/all-single")]
    assert "topology/SyntheticVI/all-single/Q_Y" in topology
    if config == "baseline":  # losses and evaluation of the last iteration in one record
        assert "total_loss" in with_eval[0]
    else:
        assert "eval_no_transfer/SyntheticVI/all-single/mAP" in with_eval[0]

    scalars = tensorboard_scalars(out)
    assert scalars[TAG] == [(last_iteration, pytest.approx(expected))]
    assert "topology/SyntheticVI/all-single/Q_Y" in scalars

"""Side-by-side comparison of runs (the demo's last step)."""
import json

import pytest

from cift.evaluation.report import (
    compare_table,
    format_protocol_table,
    load_run_results,
    method_rows,
)
from helpers import load_script
from helpers.errors import one_line_error

METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


def metrics(value: float) -> dict:
    out = {}
    for name in METRICS:
        out[name], out[name + "_std"] = value, value / 10
    return out


BASELINE = {"SyntheticVI": {"all-single": metrics(10.0), "indoor-single": metrics(20.0),
                            "metric": 10.0}}
CIFT = {"SyntheticVI": {"CIFT": {"all-single": metrics(30.0)},
                        "CIFT\u2020": {"all-single": metrics(25.0)}, "metric": 30.0}}


def test_method_rows_split_cift_runs():
    rows = method_rows("cift", CIFT["SyntheticVI"])
    assert set(rows) == {"cift", "cift\u2020"}
    assert rows["cift"]["all-single"]["R1"] == 30.0
    assert set(method_rows("baseline", BASELINE["SyntheticVI"])) == {"baseline"}


def test_compare_table_side_by_side():
    table = compare_table({"baseline": BASELINE, "cift": CIFT}, "SyntheticVI",
                          metrics=("R1", "mAP"))
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "setting", "baseline R1", "baseline mAP", "cift R1", "cift mAP", "cift\u2020 R1",
        "cift\u2020 mAP"]
    all_single = next(line for line in lines if "all-single" in line)
    assert [c.strip() for c in all_single.split("|")[2:-1]] == [
        "10.0 ± 1.0", "10.0 ± 1.0", "30.0 ± 3.0", "30.0 ± 3.0", "25.0 ± 2.5", "25.0 ± 2.5"]
    indoor = next(line for line in lines if "indoor-single" in line)
    assert [c.strip() for c in indoor.split("|")[2:-1]].count("-") == 4


def test_top_r_runs_compare_and_print_their_own_metrics():
    top_r = {"SyntheticVI": {"all-single": {k: v for k, v in metrics(40.0).items()
                                            if not k.startswith(("mAP", "mINP"))}}}
    top_r["SyntheticVI"]["all-single"].update({"mAP@100": 35.0, "mAP@100_std": 1.0})
    header = compare_table({"a": top_r, "b": top_r}, "SyntheticVI").splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:-1]] == [
        "setting", "a R1", "a mAP@100", "b R1", "b mAP@100"]
    # a full-ranking run beside it: only the metrics both report
    header = compare_table({"full": BASELINE, "top": top_r}, "SyntheticVI").splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:-1]] == ["setting", "full R1", "top R1"]
    table = format_protocol_table(top_r["SyntheticVI"])
    assert table.splitlines()[0].split("|")[-2].strip() == "mAP@100"
    assert "35.00 ± 1.00" in table


def test_load_run_results(tmp_path):
    (tmp_path / "protocol_results.json").write_text(json.dumps(BASELINE))
    assert load_run_results(tmp_path) == BASELINE
    missing = tmp_path / "missing" / "protocol_results.json"
    assert one_line_error(load_run_results, tmp_path / "missing") == (
        f"{missing}: no evaluation results (has the run finished?)")


@pytest.mark.parametrize("content, says", [
    (b"{'a': 1}", "not UTF-8 JSON (Expecting property name"),
    (b'{"a": "\xff"}', "not UTF-8 JSON ('utf-8' codec"),
    (b"[1, 2]", "not protocol results"),
    (b'{"SyntheticVI": 3}', "not protocol results"),
    (b'{"SyntheticVI": {"all-single": {"mAP": 1.0}}}', "not protocol results"),
    (b'{"SyntheticVI": {"all-single": {"R1": "high"}}}', "SyntheticVI/all-single/R1: 'high' is "
                                                          "not a number"),
    (b'{"SyntheticVI": {"all-single": {"R1": 1.0}, "metric": true}}', "SyntheticVI/metric: True"),
])
def test_results_that_are_not_results_are_refused_in_one_line(tmp_path, content, says):
    path = tmp_path / "protocol_results.json"
    path.write_bytes(content)
    message = one_line_error(load_run_results, tmp_path)
    assert message.startswith(f"{path}: {says}"), message


def load_compare_runs():
    return load_script("projects/CIFT/tools/compare_runs.py")


def cift_results(value: float) -> dict:
    return {"SyntheticVI": {"CIFT": {"all-single": metrics(value)},
                            "CIFT\u2020": {"all-single": metrics(value - 5)}, "metric": value}}


def test_compare_runs_keeps_every_run_labelled(tmp_path, capsys):
    """Three runs, two of them CIFT runs: each keeps its columns under its own label (the
    folder name, or LABEL=DIR)."""
    main = load_compare_runs().main
    for name, results in (("baseline", BASELINE), ("gft", cift_results(30.0)),
                          ("h2ft", cift_results(40.0))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "protocol_results.json").write_text(json.dumps(results))
    assert main([str(tmp_path / "baseline"), f"GFT={tmp_path / 'gft'}",
                 str(tmp_path / "h2ft")]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("| setting"))
    assert [c.strip() for c in header.split("|")[1:-1]] == [
        "setting", "baseline R1", "baseline mAP", "baseline mINP",
        "GFT R1", "GFT mAP", "GFT mINP", "GFT\u2020 R1", "GFT\u2020 mAP", "GFT\u2020 mINP",
        "h2ft R1", "h2ft mAP", "h2ft mINP", "h2ft\u2020 R1", "h2ft\u2020 mAP", "h2ft\u2020 mINP"]
    row = next(line for line in lines if "all-single" in line)
    assert [c.strip() for c in row.split("|")[2:-1]][::3] == [
        "10.0 ± 1.0", "30.0 ± 3.0", "25.0 ± 2.5", "40.0 ± 4.0", "35.0 ± 3.5"]


def test_compare_runs_refuses_two_runs_of_one_label(tmp_path, capsys):
    main = load_compare_runs().main
    for parent in ("a", "b"):
        (tmp_path / parent / "cift").mkdir(parents=True)
        (tmp_path / parent / "cift" / "protocol_results.json").write_text(
            json.dumps(cift_results(30.0)))
    assert main([str(tmp_path / "a" / "cift"), str(tmp_path / "b" / "cift")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'cift'" in err and "LABEL=DIR" in err
    assert main([str(tmp_path / "a" / "cift"), f"b={tmp_path / 'b' / 'cift'}"]) == 0


def test_ranks_at_100_in_every_setting_are_explained_under_the_table():
    full = {name: 100.0 for name in ("R10", "R20")} | {"R10_std": 0.0, "R20_std": 0.0}
    results = {"all-single": {**metrics(30.0), **full}, "indoor-single": {**metrics(40.0), **full}}
    note = format_protocol_table(results).splitlines()[-1]
    assert note.startswith("R10 = R20 = 100 in every setting: each query's identity is among "
                           "its first 10 gallery identities")
    results["indoor-single"]["R10"] = 97.0
    assert format_protocol_table(results).splitlines()[-1].startswith("R20 = 100 in every")
    results["indoor-single"]["R20_std"] = 0.5  # not 100 in every trial
    assert format_protocol_table(results).splitlines()[-1].startswith("| indoor-single")

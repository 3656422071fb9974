"""A comparison of runs as data, as Markdown, with margins; compare_runs' --json/--markdown."""
from __future__ import annotations

import json

import yaml

from cift.comparison import (
    comparison_data,
    comparison_markdown,
    comparison_tables,
    margin,
    margin_table,
    mean_std_table,
    run_facts,
    seeds_markdown,
)
from helpers import load_script
from helpers.errors import error_line


def metrics(r1: float, r1_std: float, m_ap: float, m_ap_std: float) -> dict:
    return {"R1": r1, "R1_std": r1_std, "R5": 99.0, "R5_std": 0.0, "mAP": m_ap,
            "mAP_std": m_ap_std, "mINP": m_ap - 5, "mINP_std": m_ap_std}


BASELINE = {"SyntheticVI": {"all-single": metrics(10.0, 1.0, 20.0, 0.5),
                            "all-multi": metrics(12.0, 0.25, 18.0, 0.1), "metric": 20.0}}
CIFT = {"SyntheticVI": {"CIFT": {"all-single": metrics(14.0, 2.5, 22.004, 0.6),
                                 "all-multi": metrics(12.5, 0.2, 21.0, 0.1)},
                        "CIFT\u2020": {"all-single": metrics(13.0, 1.0, 19.0, 0.5),
                                       "all-multi": metrics(13.0, 0.2, 19.5, 0.1)},
                        "metric": 22.0}}
RUNS = {"baseline": BASELINE, "CIFT": CIFT}


def test_tables_hold_mean_and_std_per_setting_column_and_metric():
    table = comparison_tables(RUNS)["SyntheticVI"]
    assert table["metrics"] == ["R1", "mAP", "mINP"]
    assert table["columns"] == ["baseline", "CIFT", "CIFT\u2020"]
    assert list(table["rows"]) == ["all-single", "all-multi"]
    assert table["rows"]["all-single"]["CIFT"]["mAP"] == [22.0, 0.6]  # rounded to 0.01
    assert table["rows"]["all-multi"]["baseline"]["R1"] == [12.0, 0.25]
    assert comparison_tables(RUNS, metrics=["R5"])["SyntheticVI"]["metrics"] == ["R5"]


def test_a_margin_is_the_difference_beside_twice_the_larger_std():
    table = comparison_tables(RUNS)["SyntheticVI"]
    # R1 all-single: 14.0 ± 2.5 against 10.0 ± 1.0
    assert margin(table, "all-single", "CIFT", "baseline", "R1") == (4.0, 5.0)
    # mAP all-multi: 21.0 ± 0.1 against 18.0 ± 0.1
    assert margin(table, "all-multi", "CIFT", "baseline", "mAP") == (3.0, 0.2)
    assert margin(table, "indoor-single", "CIFT", "baseline", "mAP") is None
    rows = margin_table(table, "baseline").splitlines()
    assert rows[0] == ("| setting | CIFT − baseline R1 | CIFT − baseline mAP | CIFT − baseline "
                       "mINP | CIFT† − baseline R1 | CIFT† − baseline mAP | CIFT† − baseline "
                       "mINP |")
    assert rows[2].split(" | ")[1:3] == ["+4.0 (2σ 5.0) ✗", "+2.0 (2σ 1.2) ✓"]
    assert rows[3].split(" | ")[1] == "+0.5 (2σ 0.5) ✗"  # not beyond: equal


def test_the_best_mean_of_each_metric_is_bold():
    rows = mean_std_table(comparison_tables(RUNS)["SyntheticVI"]).splitlines()
    cells = rows[2].strip("| ").split(" | ")
    assert cells[0] == "all-single"
    assert cells[1::3] == ["10.0 ± 1.0", "**14.0 ± 2.5**", "13.0 ± 1.0"]
    assert rows[3].strip("| ").split(" | ")[1::3] == ["12.0 ± 0.2", "12.5 ± 0.2",
                                                     "**13.0 ± 0.2**"]


def write_run(folder, results: dict, seed: int = 3, trials: int = 5) -> str:
    folder.mkdir()
    (folder / "protocol_results.json").write_text(json.dumps(results))
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "SEED": seed, "MODEL": {"DEVICE": "cpu", "META_ARCHITECTURE": "X"},
        "SOLVER": {"MAX_EPOCH": 4}, "TEST": {"SYSU": {"TRIALS": trials}}}))
    return str(folder)


def test_run_facts_come_from_the_runs_config(tmp_path):
    run = write_run(tmp_path / "run", BASELINE)
    assert run_facts(run) == {"architecture": "X", "seed": 3, "device": "cpu", "epochs": 4,
                              "sysu_trials": 5}
    assert run_facts(tmp_path) == {}


def test_markdown_says_when_where_and_how_it_was_measured(tmp_path):
    dirs = {"baseline": write_run(tmp_path / "b", BASELINE),
            "CIFT": write_run(tmp_path / "c", CIFT)}
    data = comparison_data(RUNS, dirs, command="make demo", date="2026-12-07")
    assert data["runs"]["CIFT"]["dir"] == dirs["CIFT"] and data["runs"]["CIFT"]["seed"] == 3
    text = comparison_markdown(data)
    assert text.startswith("SyntheticVI, R1 / mAP / mINP in %, mean ± std over 5 trials")
    assert mean_std_table(data["tables"]["SyntheticVI"]) in text
    assert margin_table(data["tables"]["SyntheticVI"], "baseline") in text
    assert text.endswith(f"Measured on 2026-12-07 on {data['measured']['machine']}, by "
                         "`make demo`.")


def test_compare_runs_writes_json_and_markdown(tmp_path, capsys):
    main = load_script("projects/CIFT/tools/compare_runs.py").main
    base, cift = write_run(tmp_path / "b", BASELINE), write_run(tmp_path / "c", CIFT)
    out_json, out_md = tmp_path / "comparison.json", tmp_path / "comparison.md"
    assert main([f"baseline={base}", f"CIFT={cift}", "--json", str(out_json),
                 "--markdown", str(out_md)]) == 0
    data = json.loads(out_json.read_text())
    assert data["tables"] == comparison_tables(RUNS)
    assert data["measured"]["command"].startswith("compare_runs.py baseline=")
    assert out_md.read_text() == comparison_markdown(data) + "\n"
    printed = capsys.readouterr().out
    assert "CIFT − baseline R1" in printed.splitlines()[-4]  # the margins come last


def test_a_run_whose_config_is_not_yaml_fails_in_one_line(tmp_path, capsys):
    main = load_script("projects/CIFT/tools/compare_runs.py").main
    run = write_run(tmp_path / "b", BASELINE)
    (tmp_path / "b" / "config.yaml").write_text("SEED: [1\n")
    assert main([run]) == 2
    assert "config.yaml: not a readable config" in error_line(capsys)


def test_seeds_table_puts_each_seeds_margins_side_by_side_and_counts_those_beyond():
    other = {"baseline": BASELINE,
             "CIFT": {"SyntheticVI": {**CIFT["SyntheticVI"],
                                      "CIFT": {"all-single": metrics(20.0, 1.0, 30.0, 0.5),
                                               "all-multi": metrics(11.0, 0.2, 21.0, 0.1)}}}}
    results = [comparison_data(runs, {"baseline": "b", "CIFT": "c"}, date="2026-12-07")
               for runs in (RUNS, other)]
    for data, seed in zip(results, (0, 1), strict=True):
        data["runs"]["baseline"]["seed"] = seed
    lines = seeds_markdown(results).splitlines()
    assert lines[2] == ("| setting | metric | CIFT seed 0 | CIFT seed 1 | CIFT† seed 0 | "
                        "CIFT† seed 1 |")
    # all-single R1: CIFT 14.0 ± 2.5 (seed 0) and 20.0 ± 1.0 (seed 1) against 10.0 ± 1.0
    assert lines[4] == ("| all-single | R1 | +4.0 (2σ 5.0) ✗ | +10.0 (2σ 2.0) ✓ | "
                        "+3.0 (2σ 2.0) ✓ | +3.0 (2σ 2.0) ✓ |")
    assert lines[6].startswith("| all-multi | R1 | +0.5 (2σ 0.5) ✗ | -1.0 (2σ 0.5) ✗ |")
    # CIFT: seed 0 clears 2 of 4 (both mAP), seed 1 3 of 4 (not all-multi R1)
    assert lines[-1] == "Cells beyond their margin: CIFT: 5 of 8; CIFT†: 6 of 8."

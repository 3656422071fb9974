"""The demo tables of README.md and docs/demo.md are generated from the committed demo results
(tools/demo_tables.py), and this fails when one is edited or its result changes."""
from __future__ import annotations

import json

import pytest

from cift.comparison import comparison_markdown, seeds_markdown
from helpers import ROOT, load_script
from helpers.errors import error_line

tool = load_script("projects/CIFT/tools/demo_tables.py")
BEGIN = ("<!-- generated from docs/demo_result.json by projects/CIFT/tools/demo_tables.py -->"
         "\n")


@pytest.mark.parametrize("name", tool.DOCUMENTS)
def test_each_committed_table_is_its_result_file(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert tool.filled(text, name, ROOT) == text, (
        f"{name}: a demo table differs from its result file; run {tool.TOOL}")


def test_the_readme_shows_the_demo_result():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme
    table = comparison_markdown(json.loads((ROOT / "docs/demo_result.json").read_text()))
    assert BEGIN + table + "\n" + tool.END in readme


def result() -> dict:
    row = {"R1": [10.0, 1.0], "mAP": [20.0, 0.5]}
    return {"format": 1, "measured": {"date": "2026-12-07", "machine": "a CPU", "command": ""},
            "runs": {"baseline": {"dir": "logs/demo/baseline", "sysu_trials": 5}},
            "tables": {"SyntheticVI": {"metrics": ["R1", "mAP"], "columns": ["baseline"],
                                       "rows": {"all-single": {"baseline": row}}}}}


@pytest.fixture()
def docs(tmp_path, monkeypatch):
    """A repository root with a README whose table is stale, and an empty docs/demo.md."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "demo.json").write_text(json.dumps(result()))
    (tmp_path / "README.md").write_text(f"# Demo\n\n{BEGIN}| an old table |\n{tool.END}\n\nend\n")
    (tmp_path / "docs" / "demo.md").write_text("no tables\n")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    return tmp_path


def test_check_fails_on_a_stale_table_and_a_run_regenerates_it(docs, capsys):
    assert tool.main(["--check"]) == 2  # docs/demo_result.json is not there yet
    assert "docs/demo_result.json" in error_line(capsys)
    assert tool.main(["--take", str(docs / "demo.json"), "docs/demo_result.json"]) == 0
    assert json.loads((docs / "docs/demo_result.json").read_text()) == result()
    assert tool.main(["--check"]) == 0  # --take regenerated the README
    readme = docs / "README.md"
    assert readme.read_text() == (f"# Demo\n\n{BEGIN}{comparison_markdown(result())}\n"
                                  f"{tool.END}\n\nend\n")
    readme.write_text(readme.read_text().replace("10.0 ± 1.0", "11.0 ± 1.0"))
    assert tool.main(["--check"]) == 1
    assert "README.md" in capsys.readouterr().err
    assert tool.main([]) == 0 and tool.main(["--check"]) == 0


def test_bad_inputs_fail_in_one_line(docs, capsys):
    (docs / "docs/demo_result.json").write_text("[1, 2]")
    assert tool.main(["--check"]) == 2
    assert "expected a comparison written by compare_runs.py --json" in error_line(capsys)
    (docs / "docs/demo_result.json").write_text(json.dumps(result()))
    (docs / "README.md").write_text(f"{BEGIN}| no end |\n")
    assert tool.main([]) == 2
    assert "has no closing" in error_line(capsys)


def test_a_marker_naming_several_results_stands_for_their_margins_by_seed(docs):
    results = []
    for seed, cift_r1 in ((0, 13.0), (1, 11.0)):
        data = result()
        data["runs"]["baseline"]["seed"] = seed
        table = data["tables"]["SyntheticVI"]
        table["columns"].append("CIFT")
        table["rows"]["all-single"]["CIFT"] = {"R1": [cift_r1, 0.5], "mAP": [21.0, 0.5]}
        results.append(data)
        (docs / "docs" / f"seed{seed}.json").write_text(json.dumps(data))
    marker = BEGIN.replace("docs/demo_result.json", "docs/seed0.json docs/seed1.json")
    (docs / "docs" / "demo.md").write_text(f"{marker}old\n{tool.END}\n")
    (docs / "docs/demo_result.json").write_text(json.dumps(result()))
    assert tool.main([]) == 0
    text = (docs / "docs" / "demo.md").read_text()
    assert text == f"{marker}{seeds_markdown(results)}\n{tool.END}\n"
    assert "| all-single | R1 | +3.0 (2σ 2.0) ✓ | +1.0 (2σ 2.0) ✗ |" in text

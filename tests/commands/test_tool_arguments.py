"""The tools' flags are checked when they are parsed: a flag that stands for a config key as
the config schema checks the key, counts and probabilities by their kind, output paths for what
they must be; each bad value is one `error:` line, exit status 2, nothing written."""
from __future__ import annotations

import pytest

from helpers import DEMO, load_script

TOOLS = "projects/CIFT/tools/"


def refused(capsys, tool: str, entry: str, *argv: str) -> str:
    """The one stderr line of `tool`'s command line `entry`(argv), which must return 2."""
    module = load_script(TOOLS + tool, "args_" + tool[:-3])
    assert getattr(module, entry)(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def search_argv(tmp_path, *flags: str) -> list[str]:
    return ["--config-file", DEMO, "--query", str(tmp_path), "--query-modality", "infrared",
            "--gallery", str(tmp_path), "--gallery-modality", "visible",
            "--output", str(tmp_path / "out"), *flags]


@pytest.mark.parametrize("flags, said", [
    (("--batch-size", "-1"), "argument --batch-size: TEST.IMS_PER_BATCH -1: expected an int >= 1"),
    (("--batch-size", "0"), "argument --batch-size: TEST.IMS_PER_BATCH 0: expected an int >= 1"),
    (("--topk", "0"), "argument --topk: '0': expected an int >= 1"),
])
def test_search_flags(tmp_path, capsys, flags, said):
    err = refused(capsys, "search.py", "run", *search_argv(tmp_path, *flags))
    assert err == f"error: {said}"
    assert not (tmp_path / "out").exists()


def test_search_and_export_outputs_must_be_folders(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    err = refused(capsys, "search.py", "run", *search_argv(tmp_path, "--output", str(taken)))
    assert err == f"error: argument --output: {taken}: is a file, not a folder"
    err = refused(capsys, "export_model.py", "run", "--config-file", DEMO, "--output",
                  str(taken / "entry"))
    assert err == (f"error: argument --output: {taken / 'entry'}: {taken} is "
                   "a file, not a folder")
    assert taken.read_text() == "a file"


@pytest.mark.parametrize("flags, said", [
    (("--tau", "-1"), "argument --tau: MODEL.CIFT.TAU_HOM -1: expected a finite number > 0"),
    (("--tau", "nan"), "argument --tau: MODEL.CIFT.TAU_HOM 'nan': expected a finite number > 0"),
    (("--k", "0"), "argument --k: MODEL.CIFT.TOPK 0: expected an int >= 1"),
    (("--k", "5", "--num-ids", "2", "--per-id", "2"),
     "argument --k: 5: expected at most the toy graph's nodes, --num-ids x --per-id = 4"),
    (("--fixed-qx", "1.5"), "argument --fixed-qx: '1.5': expected a finite number in [0, 1]"),
    (("--grid", "1"), "argument --grid: '1': expected an int >= 2"),
    (("--per-id", "1"), "argument --per-id: '1': expected an int >= 2"),
    (("--reps", "0"), "argument --reps: '0': expected an int >= 1"),
    (("--seed", "-1"), "argument --seed: '-1': expected an int >= 0"),
])
def test_toy_topology_flags(tmp_path, capsys, flags, said):
    out = tmp_path / "toy"
    err = refused(capsys, "toy_topology.py", "main", "--out", str(out), *flags)
    assert err == f"error: {said}"
    assert not out.exists()


@pytest.mark.parametrize("flags, said", [
    (("--top", "0"), "argument --top: '0': expected an int >= 1"),
    (("--random", "-3"), "argument --random: '-3': expected an int >= 1"),
    (("--queries", "1,-2"), "argument --queries: '1,-2': expected comma-separated query "
                            "positions >= 0"),
])
def test_visualize_affinity_flags(tmp_path, capsys, flags, said):
    err = refused(capsys, "visualize_affinity.py", "main", "--out",
                  str(tmp_path / "grid.png"), "--model", "M", DEMO, "w.pth", *flags)
    assert err == f"error: {said}"


def test_visualize_affinity_output_is_a_file(tmp_path, capsys):
    err = refused(capsys, "visualize_affinity.py", "main", "--out", str(tmp_path),
                  "--model", "M", DEMO, "w.pth")
    assert err == (f"error: argument --out: {str(tmp_path)!r}: expected "
                   "a file path, not a folder")


@pytest.mark.parametrize("splits, said", [
    ("0,11", "DATASETS.REGDB.SPLIT 0: expected an int in 1..10"),
    ("1,x", "DATASETS.REGDB.SPLIT 'x': expected an int in 1..10"),
    (",", "',': expected comma-separated splits in 1..10"),
])
def test_regdb_splits_are_regdb_split_values(capsys, splits, said):
    err = refused(capsys, "run_regdb_trials.py", "main", "--config-file", DEMO, "--splits",
                  splits)
    assert err == f"error: argument --splits: {said}"


def test_regdb_runner_refuses_a_split_key_of_its_own(capsys):
    from helpers import ROOT

    module = load_script(TOOLS + "run_regdb_trials.py", "args_regdb")
    assert module.main(["--config-file", str(ROOT / "configs/RegDB/baseline_R50.yml"),
                        "--splits", "2", "DATASETS.REGDB.SPLIT", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: DATASETS.REGDB.SPLIT: set for each split by this tool; choose the splits with "
        "--splits")


def test_compare_runs_without_runs_is_one_line(capsys):
    err = refused(capsys, "compare_runs.py", "main")
    assert err.startswith("error: ") and "runs" in err

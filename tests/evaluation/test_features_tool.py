"""tools/evaluate_features.py and the features file (cift.evaluation.features_file): bad files
and flags refused in one line with nothing written, the three containers read alike, RegDB
splits aggregated, --query/--gallery masks, --grid, --top-r and --settings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cift.evaluation.features_file import (
    features_record,
    read_features_file,
    write_features_file,
)
from helpers import load_script
from helpers.errors import error_line
from helpers.unpickling import WritesAFile

tool = load_script("projects/CIFT/tools/evaluate_features.py", "evaluate_features_tool")
plain = load_script("tests/helpers/plain_features.py", "plain_features_writer")


@pytest.fixture(scope="module")
def sysu_fields(datasets_root) -> dict[str, np.ndarray]:
    """A valid features file's fields for the generated SYSU tree (the plain loop's listing)."""
    rows = plain.listing(str(datasets_root / "SyntheticVI"))
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((len(rows), 16)).astype(np.float32)
    return {"format_version": np.asarray(1), "benchmark": np.asarray("SYSU-MM01"),
            "dataset": np.asarray("SyntheticVI"), "feats": feats,
            "pids": np.asarray([r[1] for r in rows]), "camids": np.asarray([r[2] for r in rows]),
            "modality": np.asarray([r[3] for r in rows]), "paths": np.asarray([r[0] for r in rows]),
            "query": np.asarray([r[4] for r in rows])}


def save(tmp_path: Path, fields: dict, name: str = "features.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **fields)
    return path


def changed(fields: dict, **changes) -> dict:
    out = {k: v.copy() for k, v in fields.items()}
    for key, value in changes.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


def row_set(array: np.ndarray, row: int, value) -> np.ndarray:
    array = array.copy()
    array[row] = value
    return array


# ---------------------------------------------------------------- bad input: one line, exit 2


def bad_files(f: dict) -> dict:
    """name -> (fields of a bad file, or a callable writing one into a folder; flags; the
    expected part of the message)."""
    n = f["feats"].shape[0]
    visible = int(np.flatnonzero(~f["query"])[0])
    return {
        "missing field": (changed(f, pids=None), (), "no field 'pids'"),
        "wrong length": (changed(f, camids=f["camids"][:-1]), (),
                         f"'camids' has {n - 1} entries, feats has {n} rows"),
        "NaN feature": (changed(f, feats=row_set(f["feats"], 3, np.nan)), (),
                        "'feats' row 3 is not finite"),
        "inf feature": (changed(f, feats=row_set(f["feats"], 5, np.inf)), (),
                        "'feats' row 5 is not finite"),
        "unknown pid": (changed(f, pids=row_set(f["pids"], 7, 99)), (),
                        f"row 7 ({f['paths'][7]}): pid 99, the test split of SyntheticVI"),
        "unknown path": (changed(f, paths=row_set(f["paths"], 2, "cam3/0099/0001.jpg")), (),
                         "row 2 (cam3/0099/0001.jpg): path 'cam3/0099/0001.jpg', the test "
                         "split of SyntheticVI"),
        "empty query mask": (changed(f, query=np.zeros(n, bool)), (),
                             "the query mask 'query' selects no image"),
        "d differs": (changed(f, feats_r2i=f["feats"][:, :-1], feats_i2r=f["feats"][:, :-1]),
                      (), "feature size d differs: 'feats_r2i' has 15 columns, feats has 16"),
        "a pickle that needs code": (lambda d: torch.save(
            {**{k: torch.from_numpy(v) for k, v in f.items() if v.dtype.kind != "U"},
             "paths": WritesAFile(d / "ran")}, d / "features.pt"), (), "needs code to unpickle"),
        "Python objects in an npz": (changed(f, paths=f["paths"].astype(object)), (),
                                     "field 'paths' holds Python objects"),
        "format version": (changed(f, format_version=np.asarray(2)), (),
                           "format_version 2: this version reads 1"),
        "unknown benchmark": (changed(f, benchmark=np.asarray("Market-1501")), (),
                              "benchmark 'Market-1501': expected one of SYSU-MM01, RegDB, LLCM"),
        "repeated path": (changed(f, paths=row_set(f["paths"], 4, f["paths"][3])), (),
                          f"paths[4] {str(f['paths'][3])!r} repeats row 3"),
        "absolute path": (changed(f, paths=row_set(f["paths"], 0, "/data/x.jpg")), (),
                          "paths[0] '/data/x.jpg': expected a path relative"),
        "query of the gallery modality": (changed(f, query=row_set(f["query"], visible, True)),
                                          (), f"row {visible} ({f['paths'][visible]}) is "
                                              "visible, but SYSU-MM01's queries are infrared"),
        "unknown modality": (changed(f, modality=row_set(f["modality"], 1, "thermal")), (),
                             "modality 'thermal' at row 1"),
        "bad recorded setting": (changed(f, settings=np.asarray('{"MODEL.CIFT.TOPK": 0}')), (),
                                 "settings: MODEL.CIFT.TOPK 0: expected an int >= 1"),
        "unknown recorded setting": (changed(f, settings=np.asarray('{"SOLVER.LR": 1}')), (),
                                     "settings: unknown key(s) SOLVER.LR"),
        "bad --k": (f, ("--transfer", "--k", "0"), "MODEL.CIFT.TOPK 0: expected an int >= 1"),
        "bad --tau-het": (f, ("--transfer", "--tau-het", "-1"),
                          "MODEL.CIFT.TAU_HET -1: expected a finite number > 0"),
        "bad --cmc-mode": (f, ("--cmc-mode", "images"), "TEST.CMC_MODE 'images': expected"),
        "several values without --grid": (f, ("--k", "2,4"), "--k '2,4': several values need "
                                                             "--grid"),
        "bad --top-r": (f, ("--top-r", "-2"), "TEST.RETRIEVAL.TOP_R -2: expected an int >= 0"),
        "top-R with re-ranking": (f, ("--top-r", "5", "--rerank"),
                                  "--top-r with --rerank: re-ranking needs"),
        "unknown setting": (f, ("--settings", "all-double"),
                            "--settings all-double: SYSU-MM01 reports all-single"),
        "unknown mask": (f, ("--query", "val_query"), "no bool mask 'val_query'"),
        "wrong --protocol": (f, ("--protocol", "regdb"), "but --protocol regdb"),
        "RegDB file without split": (changed(f, benchmark=np.asarray("RegDB")), (),
                                     "split None: a RegDB file names its split"),
    }


CASES = ("missing field", "wrong length", "NaN feature", "inf feature", "unknown pid",
         "unknown path", "empty query mask", "d differs", "a pickle that needs code",
         "Python objects in an npz", "format version", "unknown benchmark", "repeated path",
         "absolute path", "query of the gallery modality", "unknown modality",
         "bad recorded setting", "unknown recorded setting", "bad --k", "bad --tau-het",
         "bad --cmc-mode", "several values without --grid", "bad --top-r",
         "top-R with re-ranking", "unknown setting", "unknown mask", "wrong --protocol",
         "RegDB file without split")


def test_every_bad_case_is_listed(sysu_fields):
    assert tuple(bad_files(sysu_fields)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_writes_nothing(case, sysu_fields, datasets_root, tmp_path,
                                                  capsys):
    fields, flags, expected = bad_files(sysu_fields)[case]
    if callable(fields):
        fields(tmp_path)
        path = next(tmp_path.iterdir())
    else:
        path = save(tmp_path, fields)
    out = tmp_path / "out"
    rc = tool.run([str(path), *flags, "--out", str(out), "--data-root", str(datasets_root)])
    line = error_line(capsys)
    assert rc == 2
    assert expected in line, line
    assert not out.exists()
    assert not (tmp_path / "ran").exists()  # nothing unpickled ran


def test_a_good_file_passes_the_same_checks(sysu_fields, datasets_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert tool.run([str(save(tmp_path, sysu_fields)), "--trials", "2", "--out", str(out),
                     "--data-root", str(datasets_root)]) == 0
    assert "checked against the data set's test split" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["cmc_SyntheticVI.png",
                                                     "protocol_results.json"]


def test_missing_file_and_unknown_suffix(tmp_path, capsys):
    assert tool.run([str(tmp_path / "none.npz")]) == 2
    assert "features file not found" in error_line(capsys)
    (tmp_path / "f.txt").write_text("x")
    assert tool.run([str(tmp_path / "f.txt")]) == 2
    assert "unknown features file type '.txt'" in error_line(capsys)


def test_several_files_are_ten_regdb_splits_only(sysu_fields, tmp_path, capsys):
    a, b = save(tmp_path, sysu_fields, "a.npz"), save(tmp_path, sysu_fields, "b.npz")
    assert tool.run([str(a), str(b)]) == 2
    assert "several files are RegDB splits only" in error_line(capsys)


# ---------------------------------------------------------------- containers


def test_the_three_containers_read_alike(sysu_fields, tmp_path):
    fields = dict(sysu_fields, settings=np.asarray('{"TEST.SYSU.TRIALS": 3}'))
    npz = read_features_file(save(tmp_path, fields))
    strings = {k: v.tolist() for k, v in fields.items() if v.dtype.kind == "U"}
    tensors = {k: torch.from_numpy(v) for k, v in fields.items() if v.dtype.kind != "U"}
    torch.save({**tensors, **strings}, tmp_path / "f.pt")
    from safetensors.torch import save_file
    meta = {k: json.dumps(v) if isinstance(v, list) else v for k, v in strings.items()}
    save_file({k: v for k, v in tensors.items() if v.ndim}, tmp_path / "f.safetensors",
              metadata={**meta, "format_version": "1"})
    for other in (read_features_file(tmp_path / "f.pt"),
                  read_features_file(tmp_path / "f.safetensors")):
        assert (other.benchmark, other.dataset, other.settings) == (
            npz.benchmark, npz.dataset, {"TEST.SYSU.TRIALS": 3})
        assert other.items() == npz.items()
        np.testing.assert_array_equal(other.features["feats"], npz.features["feats"])
        np.testing.assert_array_equal(other.masks["query"], npz.masks["query"])


def test_written_record_reads_back(tmp_path):
    items = [(f"/d/cam{c}/0001/{i}.jpg", 1, c, m) for i, (c, m) in
             enumerate([(3, "infrared"), (1, "visible"), (2, "visible")])]
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    record = features_record({"feats": feats}, items, 1, "/d", "SYSU-MM01", "SYSUMM01",
                             settings={"TEST.CMC_MODE": "image"})
    write_features_file(tmp_path / "f.npz", record)
    saved = read_features_file(tmp_path / "f.npz")
    assert saved.items() == [(p[3:], pid, c, m) for p, pid, c, m in items]
    assert saved.masks["query"].tolist() == [True, False, False]
    assert saved.settings == {"TEST.CMC_MODE": "image"} and saved.split is None
    np.testing.assert_array_equal(saved.features["feats"], feats)


# ---------------------------------------------------------------- options


def results_of(out: Path) -> dict:
    return next(iter(json.loads((out / "protocol_results.json").read_text()).values()))


def test_masks_of_a_validation_file_select_queries_and_gallery(sysu_fields, tmp_path):
    # Held-out identities: the masks pick two of the four; the result equals a file holding
    # only those images.
    keep = np.isin(sysu_fields["pids"], np.unique(sysu_fields["pids"])[:2])
    masked = dict(sysu_fields, val_query=keep & sysu_fields["query"],
                  val_gallery=keep & ~sysu_fields["query"])
    only = {k: (v[keep] if v.ndim == 1 or k == "feats" else v) for k, v in sysu_fields.items()}
    flags = ["--trials", "2", "--data-root", str(tmp_path)]
    assert tool.run([str(save(tmp_path, masked, "m.npz")), "--query", "val_query", "--gallery",
                     "val_gallery", "--out", str(tmp_path / "a"), *flags]) == 0
    assert tool.run([str(save(tmp_path, only, "o.npz")), "--out", str(tmp_path / "b"),
                     *flags]) == 0
    assert results_of(tmp_path / "a") == results_of(tmp_path / "b")


def test_grid_rows_are_single_transferred_evaluations(sysu_fields, tmp_path, capsys):
    path = save(tmp_path, sysu_fields)
    flags = ["--trials", "2", "--settings", "all-single", "--data-root", str(tmp_path)]
    assert tool.run([str(path), "--grid", "--k", "2,4", "--tau-het", "0.1,0.2",
                     "--out", str(tmp_path / "g"), *flags]) == 0
    printed = capsys.readouterr().out
    assert printed.count(tool.GRID_NOTE) == 2
    rows = json.loads((tmp_path / "g" / tool.GRID_FILE).read_text())["SyntheticVI"]
    assert [(r["k"], r["tau_hom"], r["tau_het"]) for r in rows] == [
        (2, 0.4, 0.1), (2, 0.4, 0.2), (4, 0.4, 0.1), (4, 0.4, 0.2)]
    assert tool.run([str(path), "--transfer", "--k", "2", "--tau-het", "0.2",
                     "--out", str(tmp_path / "s"), *flags]) == 0
    single = results_of(tmp_path / "s")["transfer"]["all-single"]
    assert rows[1]["all-single"] == single
    assert rows[0]["all-single"] != rows[3]["all-single"]


def test_top_r_gives_the_full_rankings_cmc(sysu_fields, tmp_path):
    path = save(tmp_path, sysu_fields)
    flags = ["--trials", "2", "--data-root", str(tmp_path)]
    assert tool.run([str(path), "--top-r", "5", "--out", str(tmp_path / "r"), *flags]) == 0
    assert tool.run([str(path), "--out", str(tmp_path / "f"), *flags]) == 0
    top, full = results_of(tmp_path / "r")["raw"], results_of(tmp_path / "f")["raw"]
    for setting in full:
        assert {"mAP@5", "R20"} <= set(top[setting]) and "mINP" not in top[setting]
        for rank in ("R1", "R5", "R10", "R20"):
            assert top[setting][rank] == pytest.approx(full[setting][rank])


def regdb_file(tmp_path: Path, split: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    items = [(f"/r/{m}/{p}/{i}.bmp", p, cam, m) for m, cam in (("visible", 1), ("infrared", 2))
             for p in range(6) for i in range(3)]
    feats = rng.standard_normal((len(items), 8)).astype(np.float32)
    record = features_record({"feats": feats}, items, 18, "/r", "RegDB", "RegDB", split=split)
    write_features_file(tmp_path / f"s{split}.npz", record)
    return tmp_path / f"s{split}.npz"


def test_regdb_splits_are_aggregated_as_trials(tmp_path):
    files = [regdb_file(tmp_path, split, seed) for split, seed in ((1, 0), (2, 1))]
    assert tool.run([*map(str, files), "--out", str(tmp_path / "both")]) == 0
    each = []
    for i, path in enumerate(files):
        assert tool.run([str(path), "--out", str(tmp_path / f"one{i}")]) == 0
        each.append(results_of(tmp_path / f"one{i}")["raw"])
    both = results_of(tmp_path / "both")["raw"]
    assert list(both) == ["visible-thermal", "thermal-visible"]
    for direction, metrics in both.items():
        values = [e[direction]["mAP"] for e in each]
        assert metrics["mAP"] == pytest.approx(np.mean(values))
        assert metrics["mAP_std"] == pytest.approx(np.std(values))


def test_the_same_split_twice_is_refused(tmp_path, capsys):
    a = regdb_file(tmp_path, 3, 0)
    assert tool.run([str(a), str(a)]) == 2
    assert "split 3 is given twice" in error_line(capsys)


def test_help_names_the_tool(capsys):
    with pytest.raises(SystemExit):
        tool.argument_parser().parse_args(["--help"])
    assert "features in, protocol tables out" in " ".join(capsys.readouterr().out.split())

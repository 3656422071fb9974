"""Tests of the RegDB and LLCM readers on fake trees in the distributed layouts.

RegDB (docs/design.md §2): ``RegDB/{Visible,Thermal}/...`` and ``idx/{train,test}_{visible,thermal}_
{1..10}.txt`` with ``relative/path label`` lines. LLCM: ``idx/train_{vis,nir}.txt`` (same line
format), ``idx/test_id.txt`` (comma-separated ids), ``test_vis/cam{1..9}/{pid:04d}/`` and
``test_nir/cam{1,2,4..9}/{pid:04d}/``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from fastreid.data.datasets import DATASET_REGISTRY

import cift
from cift.data.datasets import LLCM, RegDB
from helpers import ROOT
from helpers.errors import error_message, one_line_error
from helpers.trees import (
    LLCM_TEST,
    LLCM_TRAIN,
    LLCM_TRAIN_CAMS,
    PERSONS,
    REGDB_TRIALS,
    make_llcm,
    make_regdb,
    regdb_relative,
    root_fixture,
    write_image,
)

REGDB_CONFIG = ROOT / "configs/RegDB/baseline_R50.yml"


# ---------------------------------------------------------------- RegDB

def regdb_items(data: Path, trial: int, split: str, kind: str) -> list[tuple]:
    persons = REGDB_TRIALS[trial][split == "test"]
    cam, modality = (1, "visible") if kind == "visible" else (2, "infrared")
    return [(str(data / regdb_relative(kind, p, n)), label, cam, modality)
            for label, p in enumerate(persons) for n in range(PERSONS[p])]


regdb_root = root_fixture("regdb_root", make_regdb)


@pytest.mark.parametrize("trial,num_train,num_test", [(1, 12, 5), (2, 10, 6)])
def test_regdb_splits(regdb_root: Path, trial: int, num_train: int, num_test: int) -> None:
    data_dir = regdb_root / "RegDB"
    data = RegDB(root=str(regdb_root), trial=trial)
    train = regdb_items(data_dir, trial, "train", "visible") + regdb_items(data_dir, trial,
                                                                         "train", "thermal")
    assert data.train == [(path, f"regdb_{pid}", cam, mod) for path, pid, cam, mod in train]
    assert data.query == regdb_items(data_dir, trial, "test", "visible")
    assert data.gallery == regdb_items(data_dir, trial, "test", "thermal")
    assert len(data.train) == num_train and len(data.query) == len(data.gallery) == num_test
    assert {pid for _, pid, _, _ in data.query} == {pid for _, pid, _, _ in data.gallery}


def test_regdb_trial_selects_the_split_files(regdb_root: Path) -> None:
    first, second = RegDB(root=str(regdb_root)), RegDB(root=str(regdb_root), trial=2)
    assert first.trial == 1 and second.trial == 2
    train_paths = {path for path, *_ in first.train}
    assert train_paths == {path for path, *_ in second.query + second.gallery}
    assert not train_paths & {path for path, *_ in first.query + first.gallery}


def test_regdb_modality_and_camera(regdb_root: Path) -> None:
    data = RegDB(root=str(regdb_root))
    for path, _, cam, modality in data.train + data.query + data.gallery:
        visible = Path(path).relative_to(regdb_root / "RegDB").parts[0] == "Visible"
        assert (cam, modality) == ((1, "visible") if visible else (2, "infrared"))


def test_regdb_blank_lines_are_skipped(regdb_root: Path) -> None:
    path = regdb_root / "RegDB" / "idx" / "test_thermal_1.txt"
    path.write_text("\n" + path.read_text().replace("\n", "\n\n"))
    assert len(RegDB(root=str(regdb_root)).gallery) == 5


@pytest.mark.parametrize("dataset, protocol", [(RegDB, "regdb"), (LLCM, "llcm")])
def test_registered_and_a_missing_root_named(dataset, protocol: str, tmp_path: Path) -> None:
    assert DATASET_REGISTRY.get(dataset.__name__) is dataset
    assert dataset.protocol == protocol
    message = one_line_error(dataset, root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / dataset.dataset_dir) in message


@pytest.mark.parametrize("name", ["train_visible_1.txt", "train_thermal_1.txt",
                                  "test_visible_1.txt", "test_thermal_1.txt"])
def test_regdb_missing_index_file(regdb_root: Path, name: str) -> None:
    path = regdb_root / "RegDB" / "idx" / name
    path.unlink()
    assert str(path) in one_line_error(RegDB, root=str(regdb_root))


def test_regdb_trial_without_files(regdb_root: Path) -> None:
    message = one_line_error(RegDB, root=str(regdb_root), trial=3)
    assert str(regdb_root / "RegDB" / "idx" / "train_visible_3.txt") in message


def test_regdb_split_key() -> None:
    new = cift.load_config(str(REGDB_CONFIG), ["DATASETS.REGDB.SPLIT", "3"])
    assert RegDB.config_kwargs(new) == {"trial": 3}


@pytest.mark.parametrize("trial", [0, 11, -1, "1", 1.0, True, None])
def test_regdb_trial_outside_1_to_10(regdb_root: Path, trial) -> None:
    message = one_line_error(RegDB, root=str(regdb_root), trial=trial)
    assert repr(trial) in message and "1..10" in message


def test_regdb_listed_image_missing(regdb_root: Path) -> None:
    image = regdb_root / "RegDB" / regdb_relative("thermal", 4, 0)
    image.unlink()
    message = one_line_error(RegDB, root=str(regdb_root))
    assert str(image) in message
    assert str(regdb_root / "RegDB" / "idx" / "test_thermal_1.txt") in message


@pytest.mark.parametrize("label", ["two", "-1", "2.5", "1e3"])
def test_regdb_label_that_does_not_parse(regdb_root: Path, label: str) -> None:
    path = regdb_root / "RegDB" / "idx" / "train_visible_1.txt"
    lines = path.read_text().splitlines()
    lines[1] = f"{lines[1].split()[0]} {label}"
    path.write_text("\n".join(lines))
    message = one_line_error(RegDB, root=str(regdb_root))
    assert f"{path}:2" in message and repr(label) in message


@pytest.mark.parametrize("line", ["Visible/female/0/female_v_00000_0.bmp",
                                  "Visible/female/0/female_v_00000_0.bmp 0 extra",
                                  "Visible/female/0/female_v_00000_0.bmp,0",
                                  "/RegDB/Visible/female/0/female_v_00000_0.bmp 0"])
def test_regdb_malformed_line(regdb_root: Path, line: str) -> None:
    path = regdb_root / "RegDB" / "idx" / "test_visible_1.txt"
    path.write_text(path.read_text() + line + "\n")
    assert f"{path}:6" in one_line_error(RegDB, root=str(regdb_root))


# ---------------------------------------------------------------- LLCM

def llcm_test_items(data: Path, folder: str) -> list[tuple]:
    """Expected items: ids ascending, then cameras, then file names; infrared camera 3 never."""
    modality = "visible" if folder == "test_vis" else "infrared"
    keys = sorted((pid, cam) for f, cam, pid in LLCM_TEST
                  if f == folder and pid in (3, 5, 11) and (cam, folder) != (3, "test_nir"))
    return [(str(data / folder / f"cam{cam}" / f"{pid:04d}" / f"{pid:04d}_c{cam:02d}_{n}.jpg"),
             pid, cam, modality)
            for pid, cam in keys for n in range(1, LLCM_TEST[folder, cam, pid] + 1)]


llcm_root = root_fixture("llcm_root", make_llcm)


def test_llcm_train(llcm_root: Path) -> None:
    data_dir = llcm_root / "LLCM"
    data = LLCM(root=str(llcm_root))
    want = []
    for (name, lines), modality in zip(LLCM_TRAIN.items(), ("visible", "infrared"), strict=True):
        for line, cam in zip(lines, LLCM_TRAIN_CAMS[name], strict=True):
            path, label = line.split()
            want.append((str(data_dir / path), f"llcm_{label}", cam, modality))
    assert data.train == want


def test_llcm_query_and_gallery(llcm_root: Path) -> None:
    data_dir = llcm_root / "LLCM"
    data = LLCM(root=str(llcm_root))
    assert data.query == llcm_test_items(data_dir, "test_vis")
    assert data.gallery == llcm_test_items(data_dir, "test_nir")
    assert len(data.query) == 6 and len(data.gallery) == 4
    assert {pid for _, pid, _, _ in data.query} == {3, 5, 11}
    assert {pid for _, pid, _, _ in data.gallery} == {3, 11}  # identity 5: visible only
    assert 3 not in {cam for _, _, cam, _ in data.gallery}
    for path, pid, cam, _ in data.query + data.gallery:
        assert Path(path).parts[-3:-1] == (f"cam{cam}", f"{pid:04d}")


@pytest.mark.parametrize("name", ["train_vis.txt", "train_nir.txt", "test_id.txt"])
def test_llcm_missing_index_file(llcm_root: Path, name: str) -> None:
    path = llcm_root / "LLCM" / "idx" / name
    path.unlink()
    assert str(path) in one_line_error(LLCM, root=str(llcm_root))


@pytest.mark.parametrize("folder", ["test_vis", "test_nir"])
def test_llcm_missing_test_folder(llcm_root: Path, folder: str) -> None:
    path = llcm_root / "LLCM" / folder
    path.rename(llcm_root / "elsewhere")
    assert str(path) in one_line_error(LLCM, root=str(llcm_root))


def test_llcm_test_id_without_images(llcm_root: Path) -> None:
    (llcm_root / "LLCM" / "idx" / "test_id.txt").write_text("3,12")
    message = one_line_error(LLCM, root=str(llcm_root))
    assert str(llcm_root / "LLCM") in message and "0012" in message


@pytest.mark.parametrize("text", ["3,x", "3;5"])
def test_llcm_test_id_that_does_not_parse(llcm_root: Path, text: str) -> None:
    path = llcm_root / "LLCM" / "idx" / "test_id.txt"
    path.write_text(text)
    assert str(path) in one_line_error(LLCM, root=str(llcm_root))


def test_llcm_listed_image_missing(llcm_root: Path) -> None:
    image = llcm_root / "LLCM" / LLCM_TRAIN["train_nir.txt"][1].split()[0]
    image.unlink()
    message = one_line_error(LLCM, root=str(llcm_root))
    assert str(image) in message and str(llcm_root / "LLCM" / "idx" / "train_nir.txt") in message


@pytest.mark.parametrize("line,needle", [
    ("train_vis/cam1/0002/0002_c01_s1_1.jpg one", "'one'"),
    ("train_vis/cam1/0002/0002_c01_s1_1.jpg", "train_vis.txt:4"),
    ("train_vis/cam1/0002/0002_c01_s1_1.jpg 0 1", "train_vis.txt:4"),
])
def test_llcm_bad_train_line(llcm_root: Path, line: str, needle: str) -> None:
    path = llcm_root / "LLCM" / "idx" / "train_vis.txt"
    path.write_text(path.read_text() + line + "\n")
    message = one_line_error(LLCM, root=str(llcm_root))
    assert str(path) in message and needle in message


def test_llcm_train_image_without_camera(llcm_root: Path) -> None:
    write_image(llcm_root / "LLCM" / "train_nir" / "0006" / "unnamed.jpg")
    path = llcm_root / "LLCM" / "idx" / "train_nir.txt"
    path.write_text(path.read_text() + "train_nir/0006/unnamed.jpg 1\n")
    message = one_line_error(LLCM, root=str(llcm_root))
    assert str(path) in message and "unnamed.jpg" in message


# ---------------------------------------------------------------- text encodings

@pytest.mark.parametrize("dataset, name, expected", [
    ("RegDB", "train_thermal_1.txt", "expected `relative/path label` lines"),
    ("LLCM", "train_nir.txt", "expected `relative/path label` lines"),
    ("LLCM", "test_id.txt", "expected comma-separated integer ids"),
])
def test_a_list_that_is_not_utf8_is_one_line_naming_line_and_byte(regdb_root: Path, tmp_path,
                                                                 dataset, name, expected):
    root = regdb_root if dataset == "RegDB" else tmp_path / "llcm"
    if dataset == "LLCM":
        make_llcm(root)
    path = root / dataset / "idx" / name
    first, *rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(first + b"\n" + b"caf\xe9 7\n" + b"".join(rest))
    offset = len(first) + 1 + 3
    with pytest.raises(cift.CiftInputError) as info:
        (RegDB if dataset == "RegDB" else LLCM)(root=str(root))
    assert error_message(info) == (f"{path}: line 2, byte {offset}: b'\\xe9' is not UTF-8 "
                                   f"text ({expected})")


def test_a_byte_order_mark_is_read_as_utf8(regdb_root: Path) -> None:
    path = regdb_root / "RegDB" / "idx" / "train_visible_1.txt"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(RegDB(root=str(regdb_root)).train) == 2 * sum(PERSONS[p] for p in (0, 1, 2))

"""Tests of the SYSU-MM01 reader on fake trees in the raw download layout, of VIDataset, of the
data-set lookup by name and of the generated SyntheticVI data set.

Layout (docs/design.md §2): ``SYSU-MM01/cam{1..6}/{pid:04d}/*.jpg`` and
``exp/{train,val,test}_id.txt`` (comma-separated ids). Train = train ∪ val ids; query =
infrared images (cams 3, 6) of the test ids; gallery = visible images (cams 1, 2, 4, 5) of the
test ids.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import cift
from cift.config import default_config
from cift.data.build import VIDataset, load_dataset
from cift.data.datasets import SYSUMM01, SyntheticVI
from helpers.errors import error_message, one_line_error
from helpers.trees import root_fixture, write_image

VISIBLE, INFRARED = (1, 2, 4, 5), (3, 6)
# pid -> {camera: number of images}; the counts differ so that a miscounted camera shows.
LAYOUT = {
    1: {1: 2, 3: 1, 4: 1},
    2: {2: 1, 5: 2, 6: 1},
    4: {1: 1, 3: 2},
    5: {1: 1, 2: 2, 3: 1, 6: 2},
    7: {4: 1, 5: 1, 3: 3},
    9: {1: 1, 3: 1},  # in no split: never read
}
# as in the real files: one line of comma-separated ids (whitespace is tolerated)
SPLITS = {"train": "1,2\n", "val": "4", "test": "5, 7\n"}
TRAIN_IDS, TEST_IDS = (1, 2, 4), (5, 7)


def make_sysu(root: Path, layout: dict = LAYOUT, splits: dict = SPLITS) -> Path:
    """Write a fake SYSU-MM01 tree into root/SYSU-MM01 and return that folder."""
    data = root / "SYSU-MM01"
    for pid, cams in layout.items():
        for cam, count in cams.items():
            for n in range(1, count + 1):
                write_image(data / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg", 10 * pid + n)
    (data / "exp").mkdir(parents=True)
    for split, text in splits.items():
        (data / "exp" / f"{split}_id.txt").write_text(text)
    return data


def expected_items(data: Path, pids: tuple[int, ...], cams: tuple[int, ...]) -> set[tuple]:
    return {(str(data / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg"), pid, cam,
             "visible" if cam in VISIBLE else "infrared")
            for pid in pids for cam, count in LAYOUT[pid].items() if cam in cams
            for n in range(1, count + 1)}


sysu_root = root_fixture("sysu_root", make_sysu)


def test_splits(sysu_root: Path) -> None:
    data_dir = sysu_root / "SYSU-MM01"
    # a stray non-image file is not an image
    (data_dir / "cam1" / "0001" / "Thumbs.db").write_bytes(b"x")
    data = SYSUMM01(root=str(sysu_root))

    train = {(path, pid, cam, mod) for path, pid, cam, mod in data.train}
    assert len(train) == len(data.train) == 11
    assert train == {(path, f"sysumm01_{pid}", cam, mod)
                     for path, pid, cam, mod in expected_items(data_dir, TRAIN_IDS, VISIBLE
                                                               + INFRARED)}
    assert set(data.query) == expected_items(data_dir, TEST_IDS, INFRARED)
    assert len(data.query) == 6
    assert set(data.gallery) == expected_items(data_dir, TEST_IDS, VISIBLE)
    assert len(data.gallery) == 5
    assert all(isinstance(pid, int) for _, pid, _, _ in data.query + data.gallery)
    assert {mod for *_, mod in data.query} == {"infrared"}
    assert {mod for *_, mod in data.gallery} == {"visible"}


def test_id_in_train_and_val_is_read_once(tmp_path: Path) -> None:
    make_sysu(tmp_path, splits={**SPLITS, "val": "4,1"})
    data = SYSUMM01(root=str(tmp_path))
    assert len(data.train) == len(set(data.train)) == 11


def test_modality_follows_camera(sysu_root: Path) -> None:
    data = SYSUMM01(root=str(sysu_root))
    for path, _, cam, modality in data.train + data.query + data.gallery:
        assert Path(path).parts[-3] == f"cam{cam}"
        assert modality == ("visible" if cam in (1, 2, 4, 5) else "infrared")


def test_relabelled_samples(sysu_root: Path) -> None:
    data = SYSUMM01(root=str(sysu_root))
    dataset = VIDataset(data.train, transform=None, relabel=True)
    samples = [dataset[i] for i in range(len(dataset))]
    for sample, (path, _pid, _cam, modality) in zip(samples, data.train, strict=True):
        assert set(sample) == {"images", "targets", "camids", "img_paths", "is_visible"}
        assert sample["img_paths"] == path
        assert sample["is_visible"] is (modality == "visible")
        assert sample["images"].mode == "RGB" and sample["images"].size == (4, 8)
    labels = {sample["targets"] for sample in samples}
    assert labels == set(range(len(TRAIN_IDS)))
    # one label per identity and one identity per label
    pairs = {(item[1], sample["targets"]) for item, sample in zip(data.train, samples, strict=True)}
    assert len(pairs) == len(TRAIN_IDS)
    assert {sample["camids"] for sample in samples} == set(range(6))


def test_test_items_keep_raw_labels(sysu_root: Path) -> None:
    data = SYSUMM01(root=str(sysu_root))
    dataset = VIDataset(data.query + data.gallery, transform=None, relabel=False)
    sample = dataset[0]
    assert (sample["targets"], sample["camids"]) == tuple(data.query[0][1:3])
    assert sample["is_visible"] is False


def test_missing_root(tmp_path: Path) -> None:
    message = one_line_error(SYSUMM01, root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / "SYSU-MM01") in message


def test_missing_exp_folder(sysu_root: Path) -> None:
    shutil.rmtree(sysu_root / "SYSU-MM01" / "exp")
    message = one_line_error(SYSUMM01, root=str(sysu_root))
    assert str(sysu_root / "SYSU-MM01") in message and "exp" in message


def test_missing_split_file(sysu_root: Path) -> None:
    path = sysu_root / "SYSU-MM01" / "exp" / "test_id.txt"
    path.unlink()
    assert str(path) in one_line_error(SYSUMM01, root=str(sysu_root))


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_listed_id_without_images(sysu_root: Path, split: str) -> None:
    path = sysu_root / "SYSU-MM01" / "exp" / f"{split}_id.txt"
    path.write_text(SPLITS[split].strip() + ",11")
    message = one_line_error(SYSUMM01, root=str(sysu_root))
    assert str(sysu_root / "SYSU-MM01") in message and "0011" in message


@pytest.mark.parametrize("text", ["1,two", "1;2", "1,2.5"])
def test_non_integer_id(sysu_root: Path, text: str) -> None:
    path = sysu_root / "SYSU-MM01" / "exp" / "val_id.txt"
    path.write_text(text)
    assert str(path) in one_line_error(SYSUMM01, root=str(sysu_root))


def test_unreadable_image(sysu_root: Path) -> None:
    broken = sysu_root / "SYSU-MM01" / "cam5" / "0002" / "0003.jpg"
    broken.write_bytes(b"not a jpeg at all")
    data = SYSUMM01(root=str(sysu_root))  # listing does not open images
    dataset = VIDataset(data.train, transform=None, relabel=True)
    index = [item[0] for item in data.train].index(str(broken))
    with pytest.raises(cift.CiftInputError) as info:
        dataset[index]
    assert str(broken) in error_message(info)


def test_load_dataset_reads_fastreid_datasets(sysu_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTREID_DATASETS", str(sysu_root))
    data = load_dataset(default_config(), "SYSUMM01")
    assert isinstance(data, SYSUMM01) and len(data.query) == 6


def test_load_dataset_unknown_name_lists_known() -> None:
    message = one_line_error(load_dataset, default_config(), "NoSuchSet")
    assert "NoSuchSet" in message
    for known in ("SYSUMM01", "SyntheticVI", "Market1501"):
        assert known in message


def test_synthetic_vi_generates_on_first_use(tmp_path: Path) -> None:
    folder = tmp_path / "SyntheticVI"
    assert not folder.exists()
    kwargs = dict(num_ids=12, images_per_camera=2, test_ids=4, val_ids=2, seed=0)
    data = SyntheticVI(root=str(tmp_path), **kwargs)
    assert (folder / "exp" / "test_id.txt").is_file()

    test_ids = {int(t) for t in (folder / "exp" / "test_id.txt").read_text().split(",")}
    assert len(test_ids) == 4
    assert {pid for _, pid, _, _ in data.query} == test_ids
    assert {pid for _, pid, _, _ in data.gallery} == test_ids
    assert {mod for *_, mod in data.query} == {"infrared"}
    assert {cam for _, _, cam, _ in data.query} <= set(INFRARED)
    assert {mod for *_, mod in data.gallery} == {"visible"}
    train_ids = {int(pid.removeprefix("syntheticvi_")) for _, pid, _, _ in data.train}
    assert len(train_ids) == 12 - 4 and not train_ids & test_ids
    assert all(Path(path).is_relative_to(folder) for path, *_ in data.train)

    # the second use reads the same files
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg")}
    again = SyntheticVI(root=str(tmp_path), **kwargs)
    assert again.train == data.train and again.query == data.query
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg")} == stamp


def test_synthetic_vi_bad_parameters_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(cift.CiftInputError, match="SyntheticVI: .*num_ids=12") as err:
        SyntheticVI(root=str(tmp_path), num_ids=12, images_per_camera=2, test_ids=20, val_ids=8)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "SyntheticVI").exists()


def test_synthetic_vi_folder_from_other_parameters_is_refused(tmp_path: Path) -> None:
    SyntheticVI(root=str(tmp_path), num_ids=12, images_per_camera=2, test_ids=4, val_ids=2)
    with pytest.raises(cift.CiftInputError, match=str(tmp_path / "SyntheticVI")):
        SyntheticVI(root=str(tmp_path), num_ids=13, images_per_camera=2, test_ids=4, val_ids=2)


def test_split_file_that_is_not_utf8_names_line_and_byte(sysu_root: Path) -> None:
    path = sysu_root / "SYSU-MM01" / "exp" / "train_id.txt"
    path.write_bytes(b"1,\n2\xff\n")
    assert one_line_error(SYSUMM01, root=str(sysu_root)) == (
        f"{path}: line 2, byte 4: b'\\xff' is not UTF-8 text (expected comma-separated "
        "integer ids)")


def test_train_and_test_ids_that_overlap_are_refused_naming_them(sysu_root: Path) -> None:
    (sysu_root / "SYSU-MM01" / "exp" / "test_id.txt").write_text("5,7,2,4\n")
    assert one_line_error(SYSUMM01, root=str(sysu_root)) == (
        f"{sysu_root / 'SYSU-MM01' / 'exp'}: 2 identities are listed both for training "
        "(train_id.txt, val_id.txt) and for testing (test_id.txt): 2, 4")


def test_listed_ids_whose_folders_are_empty_are_refused_all_named(sysu_root: Path) -> None:
    data_dir = sysu_root / "SYSU-MM01"
    for cam in (1, 3, 4):  # every folder of identity 1 emptied, and of identity 4
        for image in (data_dir / f"cam{cam}" / "0001").iterdir():
            image.unlink()
    shutil.rmtree(data_dir / "cam1" / "0004")
    shutil.rmtree(data_dir / "cam3" / "0004")
    (data_dir / "cam2" / "0004").mkdir(parents=True)  # an empty folder of its own
    assert one_line_error(SYSUMM01, root=str(sysu_root)) == (
        f"{data_dir}: 2 identities listed in exp/ have no image in cam{{1,2,4,5,3,6}}/<id>/ "
        "(folder missing or empty): 0001, 0004")


def test_non_utf8_image_names_are_listed_and_read(sysu_root: Path) -> None:
    folder = sysu_root / "SYSU-MM01" / "cam5" / "0002"
    name = os.fsdecode(b"caf\xe9.jpg")
    write_image(folder / name, 99)
    data = SYSUMM01(root=str(sysu_root))
    path = str(folder / name)
    assert path in [item[0] for item in data.train]
    dataset = VIDataset(data.train, transform=None, relabel=True)
    assert dataset[[item[0] for item in data.train].index(path)]["images"].size == (4, 8)


@pytest.mark.parametrize("content", ["truncated", "not an image", "bomb"])
def test_every_decode_error_is_one_line_naming_the_file(sysu_root: Path, content: str,
                                                        monkeypatch) -> None:
    from PIL import Image

    image = sysu_root / "SYSU-MM01" / "cam5" / "0002" / "0001.jpg"
    if content == "truncated":
        image.write_bytes(image.read_bytes()[:200])
    elif content == "not an image":
        image.write_bytes(b"GIF89a but nothing after")
    else:  # more than twice MAX_IMAGE_PIXELS: PIL refuses to decode it
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    data = SYSUMM01(root=str(sysu_root))
    dataset = VIDataset(data.train, transform=None, relabel=True)
    with pytest.raises(cift.CiftInputError) as info:
        dataset[[item[0] for item in data.train].index(str(image))]
    assert error_message(info).startswith(f"{image}: cannot read image (")

"""Fake RegDB and LLCM trees in their distributed layouts (docs/design.md §2), small enough
to check by hand: which person has how many images, which split file lists whom."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


def write_image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), (value % 256, 0, 0)).save(path)


# ---------------------------------------------------------------- RegDB

# person -> images per modality (differing counts, so a miscount shows); RegDB has 10 each.
PERSONS = {0: 2, 1: 1, 2: 3, 3: 2, 4: 1, 5: 2}
# trial -> (train persons, test persons); labels are positions in these lists, as in the
# distributed files (the same person has the same label in both modalities of a trial).
REGDB_TRIALS = {1: ((0, 1, 2), (3, 4, 5)), 2: ((3, 4, 5), (0, 2, 1))}
KINDS = {"visible": ("Visible", "v"), "thermal": ("Thermal", "t")}


def regdb_relative(kind: str, person: int, n: int) -> str:
    folder, letter = KINDS[kind]
    sex = "male" if person % 2 else "female"
    return f"{folder}/{sex}/{person}/{sex}_{letter}_{person:05d}_{n}.bmp"


def make_regdb(root: Path) -> Path:
    """Write a fake RegDB tree into root/RegDB and return that folder."""
    data = root / "RegDB"
    for person, count in PERSONS.items():
        for kind in KINDS:
            for n in range(count):
                write_image(data / regdb_relative(kind, person, n), 10 * person + n)
    (data / "idx").mkdir()
    for trial, splits in REGDB_TRIALS.items():
        for split, persons in zip(("train", "test"), splits, strict=True):
            for kind in KINDS:
                lines = [f"{regdb_relative(kind, p, n)} {label}"
                         for label, p in enumerate(persons) for n in range(PERSONS[p])]
                (data / "idx" / f"{split}_{kind}_{trial}.txt").write_text("\n".join(lines) + "\n")
    return data


# ---------------------------------------------------------------- LLCM

# Train lists: `relative/path label`; the camera comes from the cam folder, or from the file
# name for the last line.
LLCM_TRAIN = {
    "train_vis.txt": ["train_vis/cam1/0002/0002_c01_s1_1.jpg 0",
                      "train_vis/cam4/0002/0002_c04_s1_2.jpg 0",
                      "train_vis/cam9/0006/0006_c09_s2_1.jpg 1"],
    "train_nir.txt": ["train_nir/cam2/0002/0002_c02_s1_3.jpg 0",
                      "train_nir/cam7/0006/0006_c07_s2_4.jpg 1",
                      "train_nir/0006/0006_c05_s2_5.jpg 1"],
}
LLCM_TRAIN_CAMS = {"train_vis.txt": [1, 4, 9], "train_nir.txt": [2, 7, 5]}
# Test: (folder, camera, pid) -> number of images. Identity 8 is not a test id; the infrared
# camera-3 folder is never read; identity 5 has no infrared image.
LLCM_TEST = {
    ("test_vis", 1, 3): 2, ("test_vis", 9, 3): 1, ("test_vis", 2, 11): 1,
    ("test_vis", 4, 5): 2, ("test_vis", 3, 8): 1,
    ("test_nir", 1, 3): 1, ("test_nir", 3, 3): 2, ("test_nir", 8, 11): 2,
    ("test_nir", 2, 11): 1, ("test_nir", 4, 8): 1,
}
LLCM_TEST_IDS = "11,3,5\n"


def make_llcm(root: Path) -> Path:
    """Write a fake LLCM tree into root/LLCM and return that folder."""
    data = root / "LLCM"
    for name, lines in LLCM_TRAIN.items():
        for n, line in enumerate(lines):
            write_image(data / line.split()[0], n)
        (data / "idx").mkdir(parents=True, exist_ok=True)
        (data / "idx" / name).write_text("\n".join(lines) + "\n")
    for (folder, cam, pid), count in LLCM_TEST.items():
        for n in range(count, 0, -1):  # written in reverse: the reader sorts
            name = f"{pid:04d}_c{cam:02d}_{n}.jpg"
            write_image(data / folder / f"cam{cam}" / f"{pid:04d}" / name)
    (data / "idx" / "test_id.txt").write_text(LLCM_TEST_IDS)
    return data


def root_fixture(name: str, make: Callable[[Path], Path]):
    """A pytest fixture `name`: a fresh data-set root (tmp_path) with `make`'s tree in it."""
    def root(tmp_path: Path) -> Path:
        make(tmp_path)
        return tmp_path
    return pytest.fixture(name=name)(root)

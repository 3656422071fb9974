"""Unreadable images stop a run before anything is written, all named at once; the per-file
cache makes a rerun decode nothing (counted, not timed)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cift.config import load_config
from cift.data import image_check
from cift.engine.validate import validate
from cift.errors import CiftInputError
from helpers import DEMO
from helpers.runs import TINY, train_net


def jpeg_bytes(size=(16, 32)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture()
def tree(datasets_root, tmp_path) -> Path:
    """A private copy of the tiny data set (without another run's cache)."""
    root = tmp_path / "datasets"
    shutil.copytree(datasets_root, root)
    for name in (image_check.CACHE_NAME, image_check.BAD_LIST_NAME):
        (root / "SyntheticVI" / name).unlink(missing_ok=True)
    return root


def counting(monkeypatch) -> list[str]:
    decoded: list[str] = []
    real = image_check.check_image

    def check(path):
        decoded.append(path)
        return real(path)

    monkeypatch.setattr(image_check, "check_image", check)
    return decoded


def test_truncated_jpeg_passes_verify_but_not_the_check(tmp_path):
    # why the check decodes instead of calling Image.verify()
    data = jpeg_bytes((64, 128))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as image:
        image.verify()  # no complaint
    assert "truncated" in image_check.check_image(str(path))
    (tmp_path / "ok.jpg").write_bytes(data)
    assert image_check.check_image(str(tmp_path / "ok.jpg")) is None


def test_bad_images_stop_the_run_all_named_nothing_written(tree, tmp_path, monkeypatch,
                                                           capsys):
    data_dir = tree / "SyntheticVI"
    train_img = sorted((data_dir / "cam1").glob("*/*.jpg"))  # train and test identities
    bad = [train_img[0], train_img[-1], sorted((data_dir / "cam3").glob("*/*.jpg"))[5],
           sorted((data_dir / "cam6").glob("*/*.jpg"))[-1], train_img[7]]
    bad[0].write_bytes(b"not an image")
    bad[1].write_bytes(bad[1].read_bytes()[:200])  # truncated
    bad[2].write_bytes(b"")
    bad[3].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a broken PNG under a .jpg name
    bad[4].write_bytes(jpeg_bytes()[:-300])
    monkeypatch.setenv("FASTREID_DATASETS", str(tree))
    out = tmp_path / "out"
    rc = train_net.run(["--config-file", DEMO, *TINY, "OUTPUT_DIR", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "SyntheticVI: 5 of" in err and "cannot read image" in err
    assert "DATALOADER.CHECK_IMAGES" in err
    shown = sorted(str(p) for p in bad)[: image_check.SHOWN]
    assert all(p in err for p in shown)
    listing = data_dir / image_check.BAD_LIST_NAME
    assert str(listing) in err
    listed = [line.split("\t")[0] for line in listing.read_text().splitlines()]
    assert listed == sorted(str(p) for p in bad)
    assert not out.exists()
    # the check can be switched off: the inputs then pass, nothing decoded
    decoded = counting(monkeypatch)
    validate(load_config(DEMO, [*TINY, "DATALOADER.CHECK_IMAGES", "False"]))
    assert decoded == []


def test_cache_makes_a_rerun_decode_nothing(tree, monkeypatch):
    data_dir = str(tree / "SyntheticVI")
    paths = sorted(str(p) for p in Path(data_dir).glob("cam*/*/*.jpg"))
    decoded = counting(monkeypatch)
    assert image_check.find_unreadable(paths, data_dir) == []
    assert len(decoded) == len(paths)
    assert (Path(data_dir) / image_check.CACHE_NAME).is_file()
    decoded.clear()
    assert image_check.find_unreadable(paths, data_dir) == []
    assert decoded == []
    # a changed file (size or mtime) is decoded again, and only it
    os.utime(paths[3], ns=(1, 1))
    Path(paths[4]).write_bytes(b"broken")
    bad = image_check.find_unreadable(paths, data_dir)
    assert sorted(decoded) == sorted(paths[3:5])
    assert [p for p, _ in bad] == [paths[4]]
    # bad files are not cached: checked again next time
    decoded.clear()
    image_check.find_unreadable(paths, data_dir)
    assert decoded == [paths[4]]
    assert not list(Path(data_dir).glob(".tmp-*"))


def test_cache_falls_back_to_the_user_cache_dir(tree, tmp_path, monkeypatch):
    data_dir = str(tree / "SyntheticVI")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real = image_check.writable_dir
    monkeypatch.setattr(image_check, "writable_dir",
                        lambda d: d != data_dir and real(d))  # a read-only data set
    paths = sorted(str(p) for p in Path(data_dir).glob("cam1/*/*.jpg"))
    decoded = counting(monkeypatch)
    image_check.find_unreadable(paths, data_dir)
    image_check.find_unreadable(paths, data_dir)
    assert len(decoded) == len(paths)  # the second run decoded nothing
    assert list((tmp_path / "xdg" / "cift").glob(f"image-check-*/{image_check.CACHE_NAME}"))
    assert not (Path(data_dir) / image_check.CACHE_NAME).exists()


def test_missing_image_is_reported_with_the_others(tree):
    data_dir = tree / "SyntheticVI"
    paths = sorted(str(p) for p in data_dir.glob("cam2/*/*.jpg"))[:4]
    os.remove(paths[1])
    with pytest.raises(CiftInputError, match="1 of 4 images") as err:
        image_check.check_dataset_images("SyntheticVI", paths, str(data_dir))
    assert paths[1] in str(err.value) and "file not found" in str(err.value)

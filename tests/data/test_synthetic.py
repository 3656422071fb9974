"""Tests of the synthetic SYSU-MM01-layout data set: layout, determinism, modalities, atomic
writes, and a nearest-neighbour check that the task is learnable and has a modality gap."""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from cift.data import synthetic
from cift.data.synthetic import ensure_synthetic_sysu, generate_synthetic_sysu

VISIBLE, INFRARED = (1, 2, 4, 5), (3, 6)
SMALL = {"num_ids": 10, "images_per_camera": 2, "test_ids": 4, "val_ids": 2}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return generate_synthetic_sysu(tmp_path_factory.mktemp("data") / "SyntheticVI")


def read_ids(path: pathlib.Path) -> list[int]:
    """Parse an id file the way SYSU-MM01 loaders do: the first line, comma-separated."""
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    return [int(x) for x in lines[0].strip().split(",")]


def images_of(root: pathlib.Path, cam: int, pid: int) -> list[pathlib.Path]:
    return sorted((root / f"cam{cam}" / f"{pid:04d}").glob("*.jpg"))


def all_files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_layout_and_counts(default_root: pathlib.Path) -> None:
    assert sorted(p.name for p in default_root.iterdir()) == [
        ".complete", "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "exp"]
    train, val, test = (read_ids(default_root / "exp" / f"{s}_id.txt")
                        for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (32, 8, 20)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert sorted(train + val + test) == list(range(1, 61))
    assert train == sorted(train) and test == sorted(test)

    seen = {(cam, pid): len(images_of(default_root, cam, pid))
            for cam in range(1, 7) for pid in range(1, 61)}
    assert set(seen.values()) == {0, 6}  # a camera sees an identity 6 times, or not at all
    assert 0 < list(seen.values()).count(0) < 60  # some (identity, camera) pairs are missing
    for pid in range(1, 61):
        assert any(seen[c, pid] for c in VISIBLE) and any(seen[c, pid] for c in INFRARED)
    for pid in test:
        assert (seen[1, pid] or seen[2, pid]) and (seen[3, pid] or seen[6, pid])
    for folder in (default_root / "cam1").iterdir():  # only 4-digit identity folders
        assert len(folder.name) == 4 and 1 <= int(folder.name) <= 60

    with Image.open(images_of(default_root, 1, 1)[0]) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (48, 96))
    marker = json.loads((default_root / ".complete").read_text())
    assert marker["num_ids"] == 60 and marker["seed"] == 0


def test_infrared_is_grey_and_visible_is_not(default_root: pathlib.Path) -> None:
    for cam in range(1, 7):
        for path in sorted((default_root / f"cam{cam}").rglob("*.jpg")):
            img = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
            spread = np.abs(img[..., 0] - img[..., 1]) + np.abs(img[..., 1] - img[..., 2])
            if cam in INFRARED:
                assert spread.max() == 0, path
            else:
                assert spread.mean() > 5, path


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path: pathlib.Path) -> None:
    a = all_files(generate_synthetic_sysu(tmp_path / "a", seed=3, **SMALL))
    b = all_files(generate_synthetic_sysu(tmp_path / "b", seed=3, **SMALL))
    c = all_files(generate_synthetic_sysu(tmp_path / "c", seed=4, **SMALL))
    assert a == b
    images = [k for k in a if k.endswith(".jpg")]
    assert len(images) > 100 and images == [k for k in c if k.endswith(".jpg")]
    assert all(a[k] != c[k] for k in images)


def test_complete_data_set_is_reused(tmp_path: pathlib.Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate_synthetic_sysu(tmp_path / "d", **SMALL)
    before = all_files(root)

    def refuse(*args: object) -> None:
        raise AssertionError("regenerated an existing data set")

    monkeypatch.setattr(synthetic, "_write_jpeg", refuse)
    assert generate_synthetic_sysu(str(root), **SMALL) == root
    assert ensure_synthetic_sysu(root, **SMALL) == root
    assert all_files(root) == before


def test_folder_without_marker_is_refused(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "SyntheticVI"
    (root / "cam1").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="SyntheticVI exists but is not a complete"):
        ensure_synthetic_sysu(root, **SMALL)
    assert [p.name for p in root.iterdir()] == ["cam1"]


def test_ensure_names_differing_parameters(tmp_path: pathlib.Path) -> None:
    root = ensure_synthetic_sysu(tmp_path / "e", **SMALL)
    with pytest.raises(FileExistsError) as info:
        ensure_synthetic_sysu(root, **{**SMALL, "num_ids": 12, "seed": 1})
    message = str(info.value)
    assert str(root) in message and "num_ids=10 (asked 12)" in message
    assert "seed=0 (asked 1)" in message and "images_per_camera" not in message
    assert "\n" not in message
    with pytest.raises(TypeError):
        ensure_synthetic_sysu(root, num_identities=10)


def test_interrupted_generation_leaves_nothing(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write, calls = synthetic._write_jpeg, []

    def fail_after_five(path: pathlib.Path, img: np.ndarray) -> None:
        calls.append(path)
        if len(calls) > 5:
            raise RuntimeError("disk full")
        write(path, img)

    monkeypatch.setattr(synthetic, "_write_jpeg", fail_after_five)
    root = tmp_path / "SyntheticVI"
    with pytest.raises(RuntimeError, match="disk full"):
        generate_synthetic_sysu(root, **SMALL)
    assert len(calls) == 6 and calls[0].is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither root nor its temporary sibling

    monkeypatch.setattr(synthetic, "_write_jpeg", write)  # a later run starts afresh
    assert all_files(generate_synthetic_sysu(root, **SMALL)) == all_files(
        generate_synthetic_sysu(tmp_path / "fresh", **SMALL))


def test_losing_the_race_to_another_process_keeps_its_copy(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "SyntheticVI"
    write_layout = synthetic._write_layout

    def other_process_finishes_first(out: pathlib.Path, params: dict) -> None:
        write_layout(out, params)
        shutil.copytree(out, root)  # e.g. another rank, same parameters

    monkeypatch.setattr(synthetic, "_write_layout", other_process_finishes_first)
    assert generate_synthetic_sysu(root, **SMALL) == root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SyntheticVI"]
    assert (root / ".complete").is_file()


@pytest.mark.parametrize("bad", [{"test_ids": 6, "val_ids": 4}, {"test_ids": 0},
                                 {"images_per_camera": 0}, {"seed": -1}])
def test_impossible_parameters(tmp_path: pathlib.Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        generate_synthetic_sysu(tmp_path / "x", **{**SMALL, **bad})
    assert list(tmp_path.iterdir()) == []


def features(root: pathlib.Path, pids: list[int], cams: tuple[int, ...]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Raw-pixel features: 4x box-downsampled RGB, centred and L2-normalised. (N, D), (N,)."""
    feats, labels = [], []
    for cam in cams:
        for pid in pids:
            for path in images_of(root, cam, pid):
                with Image.open(path) as img:
                    small = img.convert("RGB").resize((img.width // 4, img.height // 4),
                                                      Image.Resampling.BOX)
                v = np.asarray(small, dtype=np.float64).ravel()
                v -= v.mean()
                feats.append(v / np.linalg.norm(v))
                labels.append(pid)
    return np.stack(feats), np.array(labels)


def rank1(query: tuple[np.ndarray, np.ndarray], gallery: tuple[np.ndarray, np.ndarray]) -> float:
    nearest = (query[0] @ gallery[0].T).argmax(axis=1)
    return float((gallery[1][nearest] == query[1]).mean())


def test_nearest_neighbour_learnable_with_a_modality_gap(default_root: pathlib.Path) -> None:
    test = read_ids(default_root / "exp" / "test_id.txt")
    queries = features(default_root, test, (1, 2))
    same = rank1(queries, features(default_root, test, (4, 5)))
    cross = rank1(queries, features(default_root, test, INFRARED))
    chance = 1 / len(test)
    print(f"raw-pixel rank-1: visible->visible {same:.3f}, visible->infrared {cross:.3f}, "
          f"chance {chance:.3f}")
    assert same > 0.6
    assert same > cross + 0.3
    assert cross > 1.5 * chance


def test_infrared_intensity_is_mostly_a_fixed_response_to_the_colour() -> None:
    """Three quarters of a material's infrared intensity is the same spectral response for every
    identity (learnable), not its luminance; a quarter is the identity's hidden signature."""
    red, green = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    assert synthetic._infrared_level(red, 0.2) == pytest.approx(0.75 * 0.6 + 0.25 * 0.2)
    assert synthetic._infrared_level(green, 0.2) == pytest.approx(0.75 * 0.1 + 0.25 * 0.2)
    # a bright green is dark in infrared, unlike its luminance (0.587)
    assert synthetic._infrared_level(green, 0.0) < 0.587 / 4
    stripes = synthetic._infrared_level(np.stack([red, green]), np.array([0.2, 0.6]))
    assert stripes == pytest.approx([0.5, 0.225])


def test_nuisance_scales_each_images_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nuisance, two images of one identity share their silhouette exactly; with it,
    they move, and the more the larger NUISANCE is."""
    attrs = synthetic.identity_attributes(0, 7)

    def silhouettes(nuisance: float) -> list[np.ndarray]:
        monkeypatch.setattr(synthetic, "NUISANCE", nuisance)
        return [np.any([mask for mask, _ in synthetic._body_layers(
            attrs, synthetic._rng(0, 3, 7, 1, n), 96, 48)], axis=0) for n in range(8)]

    def moved(masks: list[np.ndarray]) -> float:
        return float(np.mean([(m != masks[0]).mean() for m in masks[1:]]))

    assert moved(silhouettes(0.0)) == 0.0
    assert 0.0 < moved(silhouettes(0.5)) < moved(silhouettes(1.0))

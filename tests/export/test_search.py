"""projects/CIFT/tools/search.py on a fake image tree: results.json and rank-list PNGs with the
expected content, the CIFT branch of the query modality with and without transfer, ids from
folder names, undecodable images skipped with a warning, and clear errors for empty folders."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cift.data.transforms import build_vi_transforms
from cift.export import load_model_from_files
from cift.export.image_folders import NOT_UTF8, collect_images
from cift.export.ranklist import (
    BORDER,
    CORRECT_COLOUR,
    QUERY_COLOUR,
    UNKNOWN_COLOUR,
    WRONG_COLOUR,
    ranklist_size,
    tile_box,
)
from cift.export.search import Progress
from helpers import load_script
from helpers.errors import error_line
from helpers.exports import export, trained_like, write_run

search_tool = load_script("projects/CIFT/tools/search.py", "search_tool")

# id -> RGB colour of its images (lossless PNGs, so that tiles can be checked pixel by pixel)
COLOURS = {"0001": (200, 30, 30), "0002": (30, 200, 30), "0003": (30, 30, 200)}


def solid(path: Path, colour, size=(20, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).integers(0, 40, (size[1], size[0], 3))
    Image.fromarray(np.clip(np.array(colour) + noise - 20, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    for pid, colour in COLOURS.items():
        for n in range(2):
            solid(root / "gallery" / pid / f"{pid}_{n}.png", colour)
        grey = (sum(colour) // 3,) * 3
        if pid != "0003":
            solid(root / "query" / pid / f"q{pid}.png", grey)
    (root / "gallery" / "0003" / "broken.jpg").write_bytes(b"not an image")
    (root / "gallery" / "notes.txt").write_text("not an image file name: ignored")
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, list[str]]:
    """Model-zoo entries of a tiny CIFT and a tiny VIBaseline: --config-file and MODEL.WEIGHTS."""
    entries = {}
    for arch in ("CIFT", "VIBaseline"):
        base = tmp_path_factory.mktemp(arch)
        weights = write_run(base / "run", trained_like(arch))
        assert export(weights, base / "zoo", arch=arch) == 0
        entries[arch] = ["--config-file", str(base / "zoo" / "config.yaml"), "MODEL.WEIGHTS",
                         str(next((base / "zoo").glob("*.safetensors")))]
    return entries


def search(model_args, query, gallery, out, *extra, query_modality="infrared") -> int:
    return search_tool.run([*model_args, "--query", *map(str, query), "--query-modality",
                            query_modality, "--gallery", *map(str, gallery),
                            "--gallery-modality", "visible", "--output", str(out), *extra])


def features(loaded, paths):
    transform = build_vi_transforms(loaded.cfg, is_train=False)
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        return loaded.model(x)


def pixel(image: Image.Image, position: int, dx: int, dy: int):
    left, top, _, _ = tile_box(position)
    return image.getpixel((left + dx, top + dy))


def test_search_writes_results_and_rank_lists(zoo, tree, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], out,
                      "--topk", "3") == 0
    broken = str(tree / "gallery" / "0003" / "broken.jpg")
    assert broken in caplog.text and "skipped" in caplog.text
    results = json.loads((out / "results.json").read_text())
    assert results["branch"] == "i2r" and results["transfer"] is True
    assert results["num_queries"] == 2 and results["gallery_size"] == 6
    assert [s["path"] for s in results["skipped"]] == [broken]
    # expected ranking: the model's i2r features, transferred on [gallery ; queries], cosine
    loaded = load_model_from_files(*zoo["CIFT"][1:2], zoo["CIFT"][2:])
    gallery = [im.path for im in collect_images([str(tree / "gallery")], "g")
               if not im.path.endswith("broken.jpg")]
    queries = [q["path"] for q in results["queries"]]
    g, q = loaded.model.transfer_test_features(features(loaded, gallery)[:, 1],
                                               features(loaded, queries)[:, 1], "i2r")
    scores, order = (q @ g.T).topk(3, dim=1)
    pngs = sorted((out / "ranklists").iterdir())
    assert len(pngs) == 2
    for i, query in enumerate(results["queries"]):
        assert query["id"] == Path(query["path"]).parent.name
        matches = query["matches"]
        assert [m["rank"] for m in matches] == [1, 2, 3]
        assert [m["path"] for m in matches] == [gallery[j] for j in order[i].tolist()]
        assert [m["score"] for m in matches] == pytest.approx(scores[i].tolist(), abs=1e-5)
        for m in matches:
            assert m["id"] == Path(m["path"]).parent.name
            assert m["correct"] == (m["id"] == query["id"])
        png = Image.open(out / query["ranklist"]).convert("RGB")
        assert (out / query["ranklist"]) in pngs
        assert png.size == ranklist_size(3) == (328, 178)
        assert pixel(png, 0, 1, 1) == QUERY_COLOUR
        for m in matches:
            frame = CORRECT_COLOUR if m["correct"] else WRONG_COLOUR
            assert pixel(png, m["rank"], 1, 1) == frame
            inside = np.array(pixel(png, m["rank"], BORDER + 32, BORDER + 64))
            assert np.abs(inside - COLOURS[m["id"]]).max() <= 25  # the matched image's tile


def test_no_transfer_ranks_the_branch_bnneck_features(zoo, tree, tmp_path):
    out = tmp_path / "out"
    assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], out, "--topk", "2",
                  "--no-transfer", query_modality="visible") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["branch"] == "r2i" and results["transfer"] is False
    loaded = load_model_from_files(*zoo["CIFT"][1:2], zoo["CIFT"][2:])
    query = results["queries"][0]
    q = F.normalize(features(loaded, [query["path"]])[:, 0], dim=1)
    g = F.normalize(features(loaded, [m["path"] for m in query["matches"]])[:, 0], dim=1)
    assert [m["score"] for m in query["matches"]] == pytest.approx((q @ g.T)[0].tolist(),
                                                                   abs=1e-5)


def test_baseline_without_graph_and_unknown_ids(zoo, tree, tmp_path):
    flat = tmp_path / "flat"
    for i, pid in enumerate(COLOURS):
        solid(flat / f"img{i}.png", COLOURS[pid])
    out = tmp_path / "out"
    query = tree / "query" / "0001" / "q0001.png"
    assert search(zoo["VIBaseline"], [query], [flat], out, "--topk", "10") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["branch"] is None and results["transfer"] is False
    (entry,) = results["queries"]
    assert entry["id"] == "0001" and len(entry["matches"]) == 3  # k cut to the gallery size
    assert all(m["id"] is None and m["correct"] is None for m in entry["matches"])
    png = Image.open(out / entry["ranklist"]).convert("RGB")
    assert png.size == ranklist_size(3)
    assert all(pixel(png, r, 1, 1) == UNKNOWN_COLOUR for r in (1, 2, 3))


def test_rerun_replaces_the_previous_rank_lists(zoo, tree, tmp_path):
    out = tmp_path / "out"
    assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], out) == 0
    assert len(list((out / "ranklists").iterdir())) == 2
    one = tree / "query" / "0002" / "q0002.png"
    assert search(zoo["CIFT"], [one], [tree / "gallery"], out) == 0
    (png,) = (out / "ranklists").iterdir()
    assert json.loads((out / "results.json").read_text())["queries"][0]["ranklist"] == (
        f"ranklists/{png.name}")


def test_bad_inputs_fail_in_one_line(zoo, tree, tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    (empty / "0001").mkdir(parents=True)
    assert search(zoo["CIFT"], [tree / "query"], [empty], out) == 2
    err = error_line(capsys)
    assert str(empty) in err and "no image files" in err
    undecodable = tmp_path / "undecodable" / "0001"
    undecodable.mkdir(parents=True)
    (undecodable / "a.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    assert search(zoo["CIFT"], [undecodable.parent], [tree / "gallery"], out) == 2
    err = error_line(capsys)
    assert str(undecodable.parent) in err and "could be decoded" in err
    missing = tmp_path / "nowhere"
    assert search(zoo["CIFT"], [missing], [tree / "gallery"], out) == 2
    assert str(missing) in error_line(capsys)
    no_weights = [*zoo["CIFT"][:3], str(tmp_path / "absent.safetensors")]
    assert search(no_weights, [tree / "query"], [tree / "gallery"], out) == 2
    assert "absent.safetensors" in error_line(capsys)
    assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], out, "--topk", "0") == 2
    assert "--topk" in error_line(capsys)
    assert not out.exists()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_display():
    terminal = FakeTerminal()
    bar = Progress("gallery", 4, stream=terminal)
    for _ in range(4):
        bar.update(1)
    text = terminal.getvalue()
    assert text.count("\r") == 4 and text.endswith("gallery: 4/4 images [" + "#" * 30 + "]\n")
    log = io.StringIO()
    bar = Progress("query", 100, stream=log)
    for _ in range(100):
        bar.update(1)
    lines = log.getvalue().splitlines()
    assert lines[0] == "query: 1/100 images" and lines[-1] == "query: 100/100 images"
    assert len(lines) == 11  # every 10 %


def test_images_with_non_utf8_names_are_skipped_and_named_in_results(zoo, tree, tmp_path,
                                                                     caplog):
    gallery = tmp_path / "gallery"
    for pid in ("0001", "0002"):
        for n in range(2):
            solid(gallery / pid / f"{pid}_{n}.png", COLOURS[pid])
    odd = os.fsdecode(b"caf\xe9.png")
    solid(gallery / "0002" / odd, COLOURS["0002"])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert search(zoo["CIFT"], [tree / "query"], [gallery], out) == 0
    shown = f"{gallery / '0002'}/caf\\xe9.png"
    assert f"{shown}: skipped (file name is not UTF-8" in caplog.text
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["gallery_size"] == 4 and results["num_queries"] == 2
    assert results["skipped"] == [{"path": shown, "error": NOT_UTF8}]
    assert len(list((out / "ranklists").iterdir())) == 2  # one per query, as results.json says


def test_an_output_that_is_a_file_or_held_is_refused_before_any_work(zoo, tree, tmp_path,
                                                                    capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], afile) == 2
    assert error_line(capsys) == f"error: argument --output: {afile}: is a file, not a folder"
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(out=str(out))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert search(zoo["CIFT"], [tree / "query"], [tree / "gallery"], out) == 2
        assert error_line(capsys) == (f"error: --output {out}: in use by another run (pid "
                                      f"{holder.pid}); wait for it to end, or choose another "
                                      "--output")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in out.iterdir()) == [".cift-lock"]


HOLD = """
import fcntl, os, sys, time
fd = os.open(os.path.join({out!r}, ".cift-lock"), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(600)
"""

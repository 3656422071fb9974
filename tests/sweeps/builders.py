"""What the bad-input sweep's cases run on: the shared tiny data set and trained run (made once
per sweep with the tree's own code), and the altered copies, files and folders single cases
build in their own folder.

Every builder here is a function of a `Ctx` (the case's folder and placeholders) that writes
files and returns the placeholders it adds; none imports the project: what needs the tree's
code (torch, the generator) runs as a subprocess of the tree's Python.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEMO = "configs/Demo/baseline_synthetic.yml"
CIFT_DEMO = "configs/Demo/cift_synthetic.yml"

# The tiny data set of tests/conftest.py: 12 identities (4 test, 2 val), 10 images per camera.
SYNTHETIC = {"num_ids": 12, "images_per_camera": 10, "test_ids": 4, "val_ids": 2, "seed": 0}

# Overrides that make a demo run a few seconds of a CPU: ResNet-18 on 32x16 images, 2 epochs of
# 1 iteration, one SYSU trial. Chosen to stay valid under a stricter schema too (steps within
# the epochs, warm-up before the step, periods within the run), so that a refusal in a case
# comes from the case's own value. Its own list, not tests/helpers/runs.TINY: a sweep of
# another tree must run the same commands whatever that tree's tests use.
TINY = ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
        "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]",
        "DATASETS.SYNTHETIC.NUM_IDS", "12", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "10",
        "DATASETS.SYNTHETIC.TEST_IDS", "4", "DATASETS.SYNTHETIC.VAL_IDS", "2",
        "SOLVER.IMS_PER_BATCH", "16", "SOLVER.ITERS_PER_EPOCH", "1", "SOLVER.MAX_EPOCH", "2",
        "SOLVER.STEPS", "[1]", "SOLVER.WARMUP_EPOCHS", "1", "SOLVER.CHECKPOINT_PERIOD", "2",
        "TEST.EVAL_PERIOD", "2", "TEST.IMS_PER_BATCH", "64", "TEST.SYSU.TRIALS", "1",
        "DATALOADER.NUM_WORKERS", "0"]
# A run long enough to be interrupted mid-epoch (the signal cases, the first of two runs).
LONG = ["SOLVER.ITERS_PER_EPOCH", "400", "SOLVER.LOG_PERIOD", "5"]


@dataclass
class Ctx:
    """One case's world: its folder, its placeholders ({out}, {tmp}, {data}, the sweep's
    prepared files and what its builder adds) and its environment."""

    tree: Path
    python: str
    tmp: Path
    vars: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)

    def fill(self, text: str) -> str:
        return text.format_map(self.vars)


def tree_env(tree: Path, data: str) -> dict[str, str]:
    """The environment of every process the sweep starts: the tree's package first on the
    path, the data sets under `data`, one thread each (two run side by side), no GPU."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FASTREID_DATASETS")}
    env.update(PYTHONPATH=str(tree / "projects" / "CIFT"), FASTREID_DATASETS=data,
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
               CUDA_VISIBLE_DEVICES="", PYTHONDONTWRITEBYTECODE="1")
    return env


def tree_python(python: str, env: dict[str, str], code: str, *args: str, timeout: int = 600
                ) -> None:
    """Run `code` with the tree's Python; a failure raises RuntimeError with its last line."""
    done = subprocess.run([python, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail}")


# ---------------------------------------------------------------- prepared once per sweep

GENERATE = """
import sys
from cift.data.synthetic import ensure_synthetic_sysu
ensure_synthetic_sysu(sys.argv[1], num_ids=12, images_per_camera=10, test_ids=4, val_ids=2,
                      seed=0)
"""

# A checkpoint whose every floating weight is NaN, and a safetensors file whose keys match no
# parameter of the model, both made from the prepared run's final weights.
DERIVE_WEIGHTS = """
import sys
import torch
from safetensors.torch import save_file
src, nan_path, nomatch_path = sys.argv[1:]
ckpt = torch.load(src, map_location="cpu", weights_only=False)
state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
       for k, v in state.items()}
torch.save({"model": nan}, nan_path)
save_file({"renamed_" + k.replace(".", "_"): v.contiguous().clone() for k, v in state.items()
           if v.is_floating_point()}, nomatch_path)
"""


def make_regdb(synthetic: Path, root: Path, labels_per_split: int = 1) -> Path:
    """A RegDB tree (split 1) under root/RegDB from the synthetic identities: visible images
    from cameras 1 and 2, thermal ones from camera 3; the synthetic train and val ids train,
    its test ids test. Returns `root`."""
    data = root / "RegDB"
    exp = synthetic / "exp"
    ids = {name: [int(t) for t in (exp / f"{name}_id.txt").read_text().replace("\n", ",")
                  .split(",") if t.strip()] for name in ("train", "val", "test")}
    splits = {"train": ids["train"] + ids["val"], "test": ids["test"]}
    kinds = {"visible": ("Visible", (1, 2)), "thermal": ("Thermal", (3,))}
    (data / "idx").mkdir(parents=True)
    for split, persons in splits.items():
        for kind, (folder, cams) in kinds.items():
            lines = []
            for label, pid in enumerate(persons):
                for cam in cams:
                    for image in sorted((synthetic / f"cam{cam}" / f"{pid:04d}").glob("*.jpg")):
                        relative = f"{folder}/{pid}/c{cam}_{image.name}"
                        (data / relative).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(image, data / relative)
                        lines.append(f"{relative} {label}")
            (data / "idx" / f"{split}_{kind}_1.txt").write_text("\n".join(lines) + "\n")
    return root


def make_search_folders(synthetic: Path, root: Path, per_id: int = 2) -> tuple[Path, Path]:
    """query/<pid>/ (infrared, camera 3) and gallery/<pid>/ (visible, camera 1) folders of the
    synthetic test identities, `per_id` images each."""
    test_ids = [int(t) for t in (synthetic / "exp" / "test_id.txt").read_text().split(",")
                if t.strip()]
    for name, cam in (("query", 3), ("gallery", 1)):
        for pid in test_ids:
            images = sorted((synthetic / f"cam{cam}" / f"{pid:04d}").glob("*.jpg"))[:per_id]
            for image in images:
                dst = root / name / f"{pid:04d}" / image.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(image, dst)
    return root / "query", root / "gallery"


# ---------------------------------------------------------------- per-case builders

Builder = Callable[[Ctx], dict]


def sysu_copy(mutate: Callable[[Path], None] | None = None) -> Builder:
    """A copy of the pristine tiny data set as SYSU-MM01 (FASTREID_DATASETS pointing at it),
    altered by `mutate(folder)`."""
    def build(ctx: Ctx) -> dict:
        root = ctx.tmp / "datasets"
        shutil.copytree(ctx.vars["pristine"], root / "SYSU-MM01")
        (root / "SYSU-MM01" / ".complete").unlink(missing_ok=True)
        if mutate:
            mutate(root / "SYSU-MM01")
        ctx.env["FASTREID_DATASETS"] = str(root)
        return {"data": str(root)}
    return build


def regdb_copy(mutate: Callable[[Path], None] | None = None) -> Builder:
    """A copy of the prepared RegDB tree (FASTREID_DATASETS pointing at it), altered by
    `mutate(RegDB folder)`."""
    def build(ctx: Ctx) -> dict:
        root = ctx.tmp / "datasets"
        shutil.copytree(ctx.vars["regdb"], root)
        if mutate:
            mutate(root / "RegDB")
        ctx.env["FASTREID_DATASETS"] = str(root)
        return {"data": str(root)}
    return build


def ids_of(folder: Path, split: str) -> list[int]:
    text = (folder / "exp" / f"{split}_id.txt").read_text()
    return [int(t) for t in text.replace("\n", ",").split(",") if t.strip()]


def overlap_ids(folder: Path) -> None:
    """Two training identities listed as test identities too."""
    test = ids_of(folder, "test") + ids_of(folder, "train")[:2]
    (folder / "exp" / "test_id.txt").write_text(",".join(map(str, test)) + "\n")


def empty_id_folders(folder: Path) -> None:
    """The first training identity keeps its camera folders, without an image in them."""
    pid = ids_of(folder, "train")[0]
    for cam in folder.glob("cam*"):
        for image in (cam / f"{pid:04d}").glob("*"):
            image.unlink()


def non_utf8_train_ids(folder: Path) -> None:
    text = (folder / "exp" / "train_id.txt").read_bytes()
    (folder / "exp" / "train_id.txt").write_bytes(text.rstrip() + b",\xff\xfe12\n")


def bomb_png(path: Path, side: int = 20000) -> None:
    """A valid 1-bit grey PNG of side x side pixels (400 million: past Pillow's decompression
    bomb limit) in about 50 kB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes((side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                                                                      1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def gallery_bomb(folder: Path) -> None:
    """A decompression-bomb PNG among the gallery images (visible camera 1) of a test id."""
    pid = ids_of(folder, "test")[0]
    bomb_png(folder / "cam1" / f"{pid:04d}" / "9999.png")


def non_utf8_regdb_index(regdb: Path) -> None:
    index = regdb / "idx" / "train_visible_1.txt"
    index.write_bytes(index.read_bytes().replace(b"Visible/", b"Vis\xe9ble/", 1))


def write_file(name: str, content: str | bytes, var: str = "file") -> Builder:
    """tmp/<name> holding `content` ({demo} in text: the demo config's absolute path),
    as placeholder {var}."""
    def build(ctx: Ctx) -> dict:
        path = ctx.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else ctx.fill(content).encode()
        path.write_bytes(data)
        return {var: str(path)}
    return build


def yaml_on_demo(body: str, name: str = "case.yml") -> Builder:
    """A config file `_BASE_: <demo config>` plus `body`, as placeholder {yaml}."""
    return write_file(name, "_BASE_: {demo}\n" + body, var="yaml")


def base_cycle(ctx: Ctx) -> dict:
    """a.yml and b.yml naming each other as _BASE_."""
    a, b = ctx.tmp / "a.yml", ctx.tmp / "b.yml"
    a.write_text(f"_BASE_: {b}\nSOLVER:\n  MAX_EPOCH: 2\n")
    b.write_text(f"_BASE_: {a}\n")
    return {"yaml": str(a)}


def base_self(ctx: Ctx) -> dict:
    path = ctx.tmp / "self.yml"
    path.write_text(f"_BASE_: {path}\n")
    return {"yaml": str(path)}


def read_only_dir(ctx: Ctx) -> dict:
    """A folder nobody may write into, as {ro}: mode 0555, and immutable when we are root
    (root ignores modes); `release` undoes it."""
    path = ctx.tmp / "read_only"
    path.mkdir()
    path.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return {"ro": str(path)}


def release(tmp: Path) -> None:
    """Undo `read_only_dir` under `tmp` so that the case folder can be removed."""
    path = tmp / "read_only"
    if path.exists():
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


def a_file(ctx: Ctx) -> dict:
    path = ctx.tmp / "a_file"
    path.write_text("not a folder\n")
    return {"file": str(path)}


def unfinished_run(ctx: Ctx) -> dict:
    """A copy of the prepared run stopped after its first checkpoint, as {run_copy}."""
    run = ctx.tmp / "run"
    shutil.copytree(ctx.vars["run"], run)
    early = ctx.vars["early"]
    for name in ("model_final.pth", "model_best.pth", "protocol_results.json"):
        (run / name).unlink(missing_ok=True)
    (run / "last_checkpoint").write_text(Path(early).name)
    return {"run_copy": str(run)}


def finished_run(ctx: Ctx) -> dict:
    run = ctx.tmp / "run"
    shutil.copytree(ctx.vars["run"], run)
    return {"run_copy": str(run)}


def run_with_results(content: bytes) -> Builder:
    """A run folder whose protocol_results.json holds `content`, as {run_copy}."""
    def build(ctx: Ctx) -> dict:
        run = ctx.tmp / "run"
        run.mkdir()
        (run / "protocol_results.json").write_bytes(content)
        return {"run_copy": str(run)}
    return build


def search_copy(mutate: Callable[[Path, Path], None] | None = None) -> Builder:
    """Copies of the prepared query and gallery folders, as {query} and {gallery}, altered by
    `mutate(query, gallery)`."""
    def build(ctx: Ctx) -> dict:
        query, gallery = ctx.tmp / "query", ctx.tmp / "gallery"
        shutil.copytree(ctx.vars["search_query"], query)
        shutil.copytree(ctx.vars["search_gallery"], gallery)
        if mutate:
            mutate(query, gallery)
        return {"query": str(query), "gallery": str(gallery)}
    return build


def non_utf8_names(query: Path, gallery: Path) -> None:
    """One image in each folder renamed to a Latin-1 (not UTF-8) file name."""
    for folder in (query, gallery):
        image = sorted(folder.rglob("*.jpg"))[0]
        os.rename(bytes(image), os.path.join(os.fsencode(image.parent), b"caf\xe9.jpg"))


def text_as_image(query: Path, gallery: Path) -> None:
    """A gallery "image" that is a text file with an image suffix."""
    first = sorted(p for p in gallery.iterdir() if p.is_dir())[0]
    (first / "notes.jpg").write_text("this is not an image\n")


def empty_gallery(query: Path, gallery: Path) -> None:
    shutil.rmtree(gallery)
    gallery.mkdir()


def combine(*builders: Builder) -> Builder:
    def build(ctx: Ctx) -> dict:
        found = {}
        for builder in builders:
            added = builder(ctx)
            ctx.vars.update(added)
            found.update(added)
        return found
    return build


def unfinished_run_without_checkpoint(ctx: Ctx) -> dict:
    """`unfinished_run` whose last_checkpoint names a file that is gone."""
    found = unfinished_run(ctx)
    (Path(found["run_copy"]) / Path(ctx.vars["early"]).name).unlink()
    return found


def make_out(ctx: Ctx) -> dict:
    """The output folder, made beforehand (for commands given a file inside it)."""
    Path(ctx.vars["out"]).mkdir(parents=True, exist_ok=True)
    return {}

#!/usr/bin/env python
"""Cost of the pre-training image check (DATALOADER.CHECK_IMAGES) on a SYSU-sized tree: the
first run, which decodes every image, and a rerun served by the per-file cache.

    .venv/bin/python bench/image_check.py [--images 30000] [--size 128 256] [--workers N]

The tree (small JPEGs of the given width and height in SYSU-MM01's cam*/pid/ layout) is built
in a temporary folder and removed afterwards. Its files sit in the page cache when the check
runs, so reading from a cold disk would add to the first run, not to the rerun.
"""
import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))


def build_tree(root: Path, images: int, size: tuple[int, int]) -> list[str]:
    """`images` JPEGs in cam{1..6}/{pid:04d}/ folders, 20 per folder; 64 distinct contents."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    contents = []
    for _ in range(64):
        base = rng.uniform(0, 255, 3)[None, None] * (0.5 + 0.5 * np.sin(
            xx[..., None] / rng.uniform(3, 20) + yy[..., None] / rng.uniform(3, 20)))
        pixels = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90)
        contents.append(buf.getvalue())
    paths = []
    for i in range(images):
        folder = root / f"cam{i % 6 + 1}" / f"{i // 120:04d}"
        if i % 120 < 6:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.jpg"
        path.write_bytes(contents[i % len(contents)])
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=30000)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("W", "H"))
    parser.add_argument("--workers", type=int, default=0,
                        help="decoding threads (default: the check's own, min(16, CPUs))")
    args = parser.parse_args()

    from cift.data import image_check

    decoded = []
    real = image_check.check_image

    def counted(path):
        decoded.append(1)
        return real(path)

    image_check.check_image = counted
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "SYSU-MM01"
        paths = build_tree(root, args.images, tuple(args.size))
        mib = sum(os.path.getsize(p) for p in paths) / 2**20
        report = {"images": len(paths), "size": list(args.size), "tree_mib": round(mib, 1),
                  "workers": args.workers or min(16, os.cpu_count() or 1)}
        for run in ("first_run", "cached_run"):
            decoded.clear()
            start = time.perf_counter()
            bad = image_check.find_unreadable(paths, str(root), workers=args.workers or None)
            seconds = time.perf_counter() - start
            assert not bad, bad[:3]
            report[run] = {"seconds": round(seconds, 2), "decoded": len(decoded),
                           "images_per_s": round(len(paths) / seconds)}
        report["cache_kib"] = round(os.path.getsize(root / image_check.CACHE_NAME) / 1024)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Check before training that every image a run will read decodes, and report all bad ones.

Each image is decoded once, at reduced scale: JPEG files through libjpeg's DCT scaling
(`Image.draft`), which still reads the whole compressed stream. `Image.verify()` would be
cheaper but reads no JPEG scan data, so it passes truncated files, the most common damage
(an interrupted copy); a full-size decode costs about twice as much for the same answer.

Files that decoded are remembered in a small JSON cache keyed by (path, size, mtime), so a
rerun decodes only new or changed files. The cache lives in the data set folder, or, when
that is not writable, in the user cache folder ($XDG_CACHE_HOME or ~/.cache)/cift.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from ..atomic import atomic_write
from ..errors import CiftInputError
from ..progress import progress
from .images import DECODE_ERRORS

logger = logging.getLogger(__name__)

CACHE_NAME = ".cift-image-check.json"
BAD_LIST_NAME = ".cift-unreadable-images.txt"
CACHE_VERSION = 1
# bad paths named in the one-line error (the full list goes to a file beside the cache)
SHOWN = 3


def check_image(path: str) -> str | None:
    """None if `path` decodes as the loader reads it (RGB), else the reason."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.convert("RGB")
        return None
    except DECODE_ERRORS as err:
        return str(err) or type(err).__name__


def file_key(path: str) -> list[int] | None:
    """[size, mtime in ns] of a file, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def writable_dir(directory: str) -> bool:
    return os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)


def cache_dir_for(data_dir: str) -> str | None:
    """Where the cache of the data set in `data_dir` lives: the folder itself if writable,
    else a per-data-set folder of the user cache; None when neither can be written."""
    if writable_dir(data_dir):
        return data_dir
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:16]
    folder = os.path.join(base, "cift", f"image-check-{digest}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if writable_dir(folder) else None


def read_cache(path: str) -> dict[str, list[int]]:
    """{path relative to the data set folder: [size, mtime_ns]} of images known to decode."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def write_text_atomic(path: str, text: str) -> None:
    try:
        atomic_write(path, lambda f: f.write(text.encode()))
    except OSError as err:  # a cache is an optimisation: never fail the run for it
        logger.warning(f"{path}: cannot write ({err})")




def relative_paths(paths, data_dir: str) -> dict[str, str]:
    """{path: path relative to `data_dir`} (string slicing: os.path.relpath costs more than
    the rest of a cached check)."""
    root = os.path.join(os.path.abspath(data_dir), "")
    rel = {}
    for p in paths:
        full = p if os.path.isabs(p) else os.path.abspath(p)
        rel[p] = full[len(root):] if full.startswith(root) else os.path.relpath(full, root)
    return rel


def find_unreadable(paths: Sequence[str], data_dir: str, workers: int | None = None,
                    desc: str = "checking images") -> list[tuple[str, str]]:
    """(path, reason) of every image of `paths` that does not decode.

    Args:
        paths: image files, all under `data_dir`.
        data_dir: the data set folder (cache location and key of the relative paths).
        workers: decoding threads (PIL decodes without the GIL); default min(16, CPUs).
    """
    cache_dir = cache_dir_for(data_dir)
    cache_file = os.path.join(cache_dir, CACHE_NAME) if cache_dir else None
    known = read_cache(cache_file) if cache_file else {}
    keys = {p: file_key(p) for p in dict.fromkeys(paths)}
    rel = relative_paths(keys, data_dir)
    bad = [(p, "file not found") for p, key in keys.items() if key is None]
    todo = [p for p, key in keys.items() if key is not None and known.get(rel[p]) != key]
    if todo:
        workers = workers or min(16, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(progress(pool.map(check_image, todo, chunksize=64), desc=desc,
                                    total=len(todo), unit="img"))
        bad.extend((p, r) for p, r in zip(todo, reasons, strict=True) if r is not None)
        bad_set = {p for p, _ in bad}
        known.update({rel[p]: keys[p] for p in todo if p not in bad_set})
        if cache_file:
            write_text_atomic(cache_file, json.dumps(
                {"version": CACHE_VERSION, "files": known}, separators=(",", ":")))
    return sorted(bad)


def check_dataset_images(name: str, paths: Sequence[str], data_dir: str) -> None:
    """Raise one CiftInputError naming how many of a data set's images do not decode and the
    first few; the whole list is written beside the cache."""
    bad = find_unreadable(paths, data_dir, desc=f"checking {name} images")
    if not bad:
        return
    shown = "; ".join(f"{p} ({reason})" for p, reason in bad[:SHOWN])
    more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    where = ""
    cache_dir = cache_dir_for(data_dir)
    if cache_dir and len(bad) > SHOWN:
        listing = os.path.join(cache_dir, BAD_LIST_NAME)
        write_text_atomic(listing, "".join(f"{p}\t{reason}\n" for p, reason in bad))
        where = f" (all listed in {listing})"
    raise CiftInputError(f"{name}: {len(bad)} of {len(paths)} images cannot be read (cannot "
                         f"read image): {shown}{more}{where}; fix or remove them, or set "
                         "DATALOADER.CHECK_IMAGES False to skip this check")

"""Images named for a search: folders (every image file under them, recursively) or files.

An image's identity is the name of its parent folder (`.../<pid>/<image>`), except for an image
lying directly in a folder given as the query or gallery, whose identity is unknown. A file
that cannot be decoded is handed on as an error, not raised (:class:`ImageFiles`), so that one
bad file does not stop a search over thousands.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..data.images import DECODE_ERRORS, decode_error_text, decode_rgb, display_path
from ..errors import CiftInputError

__all__ = ["IMAGE_SUFFIXES", "NOT_UTF8", "ImageFiles", "SearchImage", "collate_decoded",
           "collect_images", "is_utf8_name", "split_utf8_names"]

# File names taken for images when a folder is searched.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Why an image whose path is not UTF-8 is skipped: results.json (UTF-8 JSON) could not name it.
NOT_UTF8 = "file name is not UTF-8 (shown with \\xNN escapes); rename it to search it"


@dataclass(frozen=True)
class SearchImage:
    path: str
    pid: str | None  # from the parent folder's name; None when unknown


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def is_utf8_name(path: str) -> bool:
    """Whether `path` is valid UTF-8 text (Python keeps the bytes of a file name that are not as
    lone surrogates, which no UTF-8 file such as results.json can hold)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_utf8_names(images: list[SearchImage]) -> tuple[list[SearchImage], list[tuple]]:
    """(images whose path is UTF-8, [(printable path, NOT_UTF8)] of the others), so that a
    search skips them as it skips an image that does not decode, and names them."""
    kept = [image for image in images if is_utf8_name(image.path)]
    skipped = [(display_path(image.path), NOT_UTF8) for image in images
               if not is_utf8_name(image.path)]
    return kept, skipped


def collect_images(paths: Sequence[str], what: str) -> list[SearchImage]:
    """The images named by `paths` (folders: every image file under them, sorted; files: as
    given), each with its identity, without duplicates.

    Raises:
        CiftInputError: a path that does not exist or is not UTF-8 text, or a folder with no
            image file.
    """
    images: dict[str, SearchImage] = {}
    for path in paths:
        if not is_utf8_name(path):
            raise CiftInputError(f"{what} {display_path(path)}: the path is not UTF-8 text "
                                 "(results.json could not name its images)")
        if os.path.isfile(path):
            images.setdefault(path, SearchImage(path, os.path.basename(os.path.dirname(
                os.path.abspath(path))) or None))
            continue
        if not os.path.isdir(path):
            raise CiftInputError(f"{what} {path}: no such file or folder")
        found = []
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if _is_image_name(name) and not name.startswith("."):
                    pid = None if os.path.samefile(folder, path) else os.path.basename(folder)
                    found.append(SearchImage(os.path.join(folder, name), pid))
        if not found:
            raise CiftInputError(f"{what} {path}: no image files in this folder (looked for "
                                 f"{', '.join(IMAGE_SUFFIXES)})")
        for image in found:
            images.setdefault(image.path, image)
    return list(images.values())


class ImageFiles(Dataset):
    """(index, image tensor or None, error or None) per path: decoding errors are returned, not
    raised, so that the loader can skip the file."""

    def __init__(self, paths: Sequence[str], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            return index, self.transform(decode_rgb(self.paths[index])), None
        except DECODE_ERRORS as err:
            return index, None, decode_error_text(err)


def collate_decoded(batch: list[tuple]) -> tuple[list[int], torch.Tensor | None, list[tuple]]:
    """An :class:`ImageFiles` batch as (indices of the decoded images, their (B, C, H, W)
    stack or None, [(index, error)] of the others)."""
    kept = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, err) for i, x, err in batch if x is None]
    images = torch.stack([x for _, x in kept]) if kept else None
    return [i for i, _ in kept], images, failed

"""Pieces every VI-ReID data set reader shares."""
from __future__ import annotations

import codecs
from pathlib import Path

from ...errors import CiftInputError


class NoConfigOptions:
    """The config hook of a data set that takes no options from the config (mixed in before
    fastreid's ImageDataset)."""

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """Constructor arguments from the config: none (see cift.data.build.load_dataset)."""
        return {}


def read_text(path: Path, expected: str) -> str:
    """The text of a list file the data sets read, decoded as UTF-8 (a leading byte-order mark
    is dropped). A file that cannot be read or is not UTF-8 is a one-line error naming it (and
    the line and byte of the first bad byte) and `expected`, what the file should hold."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CiftInputError(f"{path}: cannot read ({err.strerror}; expected {expected})"
                             ) from None
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise CiftInputError(f"{path}: line {line}, byte {offset}: {data[offset:offset + 1]!r} "
                             f"is not UTF-8 text (expected {expected})") from None


def require_dataset_folder(data_dir: Path) -> Path:
    """`data_dir` if it is a folder; else a one-line error naming it and where to look."""
    if not data_dir.is_dir():
        raise CiftInputError(f"{data_dir}: data set folder not found (set FASTREID_DATASETS; "
                             f"see datasets/README.md for the expected layout)")
    return data_dir

"""Pieces every VI-ReID data set reader shares."""
from __future__ import annotations

from pathlib import Path

from ...errors import CiftInputError


class NoConfigOptions:
    """The config hook of a data set that takes no options from the config (mixed in before
    fastreid's ImageDataset)."""

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """Constructor arguments from the config: none (see cift.data.build.load_dataset)."""
        return {}


def require_dataset_folder(data_dir: Path) -> Path:
    """`data_dir` if it is a folder; else a one-line error naming it and where to look."""
    if not data_dir.is_dir():
        raise CiftInputError(f"{data_dir}: data set folder not found (set FASTREID_DATASETS; "
                             f"see datasets/README.md for the expected layout)")
    return data_dir

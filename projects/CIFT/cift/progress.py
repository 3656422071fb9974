"""Progress bars for the long steps (data set generation, protocol scoring, the toy
experiment): tqdm on stderr when it is a terminal, nothing otherwise (log files, tests, CI)."""
from __future__ import annotations

from collections.abc import Iterable


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None,
             unit: str = "it", leave: bool = False):
    """tqdm over `iterable` (or a manual bar of `total` steps when it is None), disabled when
    stderr is not a terminal (tqdm's `disable=None`)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=None,
                dynamic_ncols=True)

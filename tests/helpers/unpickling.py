"""An object whose unpickling runs code we can observe (a file appears)."""
from __future__ import annotations

from pathlib import Path


class WritesAFile:
    """Unpickling this runs `open(marker, "w")`: code execution we can observe."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")

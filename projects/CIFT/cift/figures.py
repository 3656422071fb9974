"""Matplotlib figures on their own Agg canvas (no pyplot state, no display needed), saved at a
fixed size, so that a figure's pixel size depends only on its arguments. Shared by the
evaluation's CMC plots and the analysis figures; `safe_name` for the files of every image
output."""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DPI", "new_figure", "safe_name", "save_figure"]

DPI = 100


def safe_name(name: str) -> str:
    """`name` with every run of characters other than letters, digits, '.', '_' and '-'
    replaced by one '_', for file names built from data set names and image paths."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def new_figure(figsize):
    """A matplotlib Figure of `figsize` inches at DPI, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Save `fig` as `path` (parent folders created) at figsize x DPI pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the pixel size stays figsize * DPI
    return path

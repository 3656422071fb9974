"""Matplotlib figures on their own Agg canvas (no pyplot state, no display needed), saved at a
fixed size, so that a figure's pixel size depends only on its arguments. Shared by the
evaluation's CMC plots and the analysis figures."""
from __future__ import annotations

from pathlib import Path

__all__ = ["DPI", "new_figure", "save_figure"]

DPI = 100


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

"""CMC curves of an evaluation (ranks 1..20 of every reported setting) as PNG files."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..figures import new_figure, safe_name, save_figure

__all__ = ["CMC_FIGSIZE", "plot_cmc_curves", "save_cmc_curves"]

CMC_FIGSIZE = (6.4, 4.8)      # inches: 640 x 480 pixels at DPI
LINE_STYLES = ("-", "--", ":", "-.")


def plot_cmc_curves(curves: Mapping[str, Sequence[float]], path: str | Path,
                    max_rank: int = 20, title: str = "") -> Path:
    """One CMC curve (rank 1..max_rank) per setting, on one axes, saved as a PNG.

    Args:
        curves: {label: (R,) matching rates in percent, rank 1 first}; a label "<method>
            <setting>" gets the setting's colour and the method's line style. A curve shorter
            than `max_rank` (an identity-level CMC ends at the number of gallery identities,
            where it has reached its final value) is extended with its last value.
        path: output PNG (parent folders are created).
        max_rank: last rank shown.
        title: optional figure title.

    Returns:
        Path: `path`; the image is 640 x 480 pixels.
    """
    if not curves:
        raise ValueError("no CMC curve to plot")
    ranks = np.arange(1, max_rank + 1)
    fig = new_figure(CMC_FIGSIZE)
    ax = fig.add_subplot()
    # "<method> <setting>" labels (e.g. "CIFT all-single", "CIFT† all-single"): one colour per
    # setting, one line style per method
    methods, settings = {}, {}
    for label, curve in curves.items():
        curve = np.asarray(curve, dtype=float).reshape(-1)
        if curve.size == 0:
            raise ValueError(f"CMC curve {label!r} is empty")
        method, _, setting = label.rpartition(" ")
        colour = settings.setdefault(setting, f"C{len(settings) % 10}")
        style = methods.setdefault(method, LINE_STYLES[len(methods) % len(LINE_STYLES)])
        values = curve[np.minimum(ranks - 1, curve.size - 1)]
        ax.plot(ranks, values, color=colour, linestyle=style, marker="o", markersize=3,
                label=f"{label} (R1 {values[0]:.1f})")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max_rank)
    ax.set_xticks([1, *range(5, max_rank + 1, 5)])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_cmc_curves(curves_by_test_set: Mapping[str, Mapping[str, Sequence[float]]],
                    out_dir: str | Path, max_rank: int = 20) -> list[Path]:
    """`plot_cmc_curves` for every test set: ``<out_dir>/cmc_<test set>.png``.

    Args:
        curves_by_test_set: {test set: {setting label: (R,) CMC in percent}}; test sets
            without a curve are skipped.
        out_dir: output folder.

    Returns:
        list[Path]: the written files.
    """
    paths = []
    for name, curves in curves_by_test_set.items():
        if curves:
            path = Path(out_dir) / f"cmc_{safe_name(name)}.png"
            paths.append(plot_cmc_curves(curves, path, max_rank, title=f"{name} CMC"))
    return paths

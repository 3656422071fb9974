"""Analysis figures: the toy experiment's heat map and surface, affinity neighbour grids.

Matplotlib figures come from :mod:`cift.figures` (fixed pixel size); affinity grids are
composed with Pillow on an exact pixel layout (:class:`GridLayout`). The evaluation's CMC
curves are in :mod:`cift.evaluation.cmc_plot`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..data.images import read_rgb
from ..figures import new_figure, save_figure

__all__ = [
    "GridLayout",
    "Tile",
    "affinity_grid",
    "plot_toy_heatmap",
    "plot_toy_surface",
]

TOY_FIGSIZE = (6.4, 5.2)      # 640 x 520
RIGHT, WRONG, QUERY = (0, 170, 0), (220, 0, 0), (70, 110, 220)
BACKGROUND = (255, 255, 255)
FONT_SIZE = 12  # Pillow's built-in font; at its default size 10 a space is 2 pixels wide


def plot_toy_heatmap(qx_targets, qa_targets, qy_mean, path: str | Path, level: float = 0.7,
                     low_qa: float | None = 0.1, fixed_qx: float | None = None) -> Path:
    """Heat map Q_X (rows) x Q_A (columns) -> mean Q_Y, with the Q_Y = `level` contour, a
    dashed vertical line at Q_A = `low_qa` and a horizontal one at Q_X = `fixed_qx` (the two
    lines of supplementary Fig. 1a). 640 x 520 pixels.

    Args:
        qx_targets: (Gx,), qa_targets: (Ga,) increasing; qy_mean: (Gx, Ga).
    """
    qx, qa, qy = (np.asarray(v, dtype=float) for v in (qx_targets, qa_targets, qy_mean))
    fig = new_figure(TOY_FIGSIZE)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(qa, qx, qy, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="Q_Y")
    if qx.size > 1 and qa.size > 1 and qy.min() < level < qy.max():
        contour = ax.contour(qa, qx, qy, levels=[level], colors="white", linewidths=1.5)
        ax.clabel(contour, fmt=f"Q_Y={level:g}", fontsize=8)
    if low_qa is not None:
        ax.axvline(low_qa, color="tab:blue", linestyle="--", linewidth=1.5)
    if fixed_qx is not None:
        ax.axhline(fixed_qx, color="gold", linestyle="--", linewidth=1.5)
    ax.set_xlabel("Q_A")
    ax.set_ylabel("Q_X")
    ax.set_title("toy experiment: mean Q_Y of Y = A·X")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_toy_surface(qx_targets, qa_targets, qy_mean, path: str | Path) -> Path:
    """3-D surface of mean Q_Y over (Q_A, Q_X) (supplementary Fig. 1b). 640 x 520 pixels."""
    qx, qa, qy = (np.asarray(v, dtype=float) for v in (qx_targets, qa_targets, qy_mean))
    fig = new_figure(TOY_FIGSIZE)
    ax = fig.add_subplot(projection="3d")
    grid_a, grid_x = np.meshgrid(qa, qx)
    ax.plot_surface(grid_a, grid_x, qy, cmap="viridis", edgecolor="none")
    ax.set_xlabel("Q_A")
    ax.set_ylabel("Q_X")
    ax.set_zlabel("Q_Y")
    ax.view_init(elev=25, azim=-135)
    return save_figure(fig, path)


@dataclass(frozen=True)
class Tile:
    """One image of an affinity grid.

    Attributes:
        path: image file.
        correct: True / False for a neighbour of the right / wrong identity (green / red
            border); None for the query itself (blue border).
        caption: text under the image (e.g. the affinity weight).
    """

    path: str
    correct: bool | None = None
    caption: str = ""

    @property
    def colour(self) -> tuple[int, int, int]:
        return QUERY if self.correct is None else RIGHT if self.correct else WRONG


@dataclass(frozen=True)
class GridLayout:
    """Pixel layout of an affinity grid: rows of queries, each row one group of tiles per model
    (query first, then its neighbours), groups side by side, an optional header band with the
    model names. Every tile is `tile_size` (w, h) inside a `border`-pixel coloured frame, with
    a caption band under it.
    """

    rows: int
    groups: int
    tiles: int
    header: bool = False
    tile_size: tuple[int, int] = (64, 128)
    border: int = 4
    space: int = 4
    gap: int = 24
    pad: int = 8
    caption_height: int = 16
    header_height: int = 20

    @property
    def cell(self) -> tuple[int, int]:
        """(w, h) of a framed tile plus its caption band."""
        w, h = self.tile_size
        return w + 2 * self.border, h + 2 * self.border + self.caption_height

    @property
    def group_width(self) -> int:
        return self.tiles * self.cell[0] + (self.tiles - 1) * self.space

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole image in pixels."""
        width = 2 * self.pad + self.groups * self.group_width + (self.groups - 1) * self.gap
        top = self.header_height if self.header else 0
        height = 2 * self.pad + top + self.rows * self.cell[1] + (self.rows - 1) * self.space
        return width, height

    def frame_box(self, row: int, group: int, tile: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), exclusive end, of a tile's coloured frame."""
        w, h = self.tile_size
        x0 = self.pad + group * (self.group_width + self.gap) + tile * (self.cell[0] + self.space)
        y0 = (self.pad + (self.header_height if self.header else 0)
              + row * (self.cell[1] + self.space))
        return x0, y0, x0 + w + 2 * self.border, y0 + h + 2 * self.border


def affinity_grid(rows: Sequence[Sequence[Sequence[Tile]]], path: str | Path,
                  headers: Sequence[str] | None = None, **layout) -> Path:
    """Save a grid of queries and their top affinity neighbours (supplementary Figs. 2-5).

    Args:
        rows: ``rows[r][g]`` is group ``g`` of row ``r`` (one group per model, side by side):
            the query's Tile first, then its neighbours'. Every group has the same length.
        path: output PNG.
        headers: optional one label per group, drawn above the columns.
        layout: GridLayout keyword arguments (tile_size, border, ...).

    Returns:
        Path: `path`; its size is ``GridLayout(...).size``.
    """
    if not rows or not rows[0]:
        raise ValueError("an affinity grid needs at least one row and one group")
    groups, tiles = len(rows[0]), len(rows[0][0])
    if any(len(r) != groups or any(len(g) != tiles for g in r) for r in rows):
        raise ValueError("every row needs the same number of groups and every group the same "
                         "number of tiles")
    if headers is not None and len(headers) != groups:
        raise ValueError(f"{len(headers)} headers for {groups} groups")
    grid = GridLayout(len(rows), groups, tiles, header=headers is not None, **layout)
    image = Image.new("RGB", grid.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=FONT_SIZE)
    for g, label in enumerate(headers or ()):
        x0, _, _, _ = grid.frame_box(0, g, 0)
        draw.text((x0, grid.pad), label, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        for g, group in enumerate(row):
            for t, tile in enumerate(group):
                x0, y0, x1, y1 = grid.frame_box(r, g, t)
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=tile.colour)
                picture = read_rgb(tile.path).resize(grid.tile_size, Image.BILINEAR)
                image.paste(picture, (x0 + grid.border, y0 + grid.border))
                if tile.caption:
                    draw.text((x0, y1 + 1), tile.caption, fill=(0, 0, 0), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


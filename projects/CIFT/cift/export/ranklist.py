"""Rank-list PNGs: a query image and its ranked gallery matches, framed by correctness."""
from __future__ import annotations

import os

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..atomic import atomic_write
from ..data.images import decode_rgb
from ..figures import safe_name
from .image_folders import SearchImage

__all__ = ["draw_ranklist", "frame_colour", "ranklist_name", "ranklist_size", "tile_box"]

# Rank-list PNG layout (pixels): the query tile, then the top-k tiles, each an image padded to
# TILE_H x TILE_W inside a BORDER-wide coloured frame, with a caption below.
TILE_H, TILE_W = 128, 64
BORDER = 4
GAP = 4  # between result tiles
QUERY_GAP = 16  # between the query and the first result
MARGIN = 8
CAPTION_H = 26
BACKGROUND = (255, 255, 255)
QUERY_COLOUR = (40, 90, 200)
CORRECT_COLOUR = (0, 170, 0)
WRONG_COLOUR = (220, 0, 0)
UNKNOWN_COLOUR = (160, 160, 160)



def ranklist_size(k: int) -> tuple[int, int]:
    """(width, height) of the rank-list PNG of a query with k results."""
    cell = TILE_W + 2 * BORDER
    width = 2 * MARGIN + cell * (k + 1) + (QUERY_GAP if k else 0) + GAP * max(k - 1, 0)
    return width, 2 * MARGIN + TILE_H + 2 * BORDER + CAPTION_H


def tile_box(position: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), exclusive, of the framed tile at `position` (0: the query,
    r: the rank-r result)."""
    cell = TILE_W + 2 * BORDER
    left = MARGIN if position == 0 else (MARGIN + cell + QUERY_GAP + (position - 1) * (cell + GAP))
    return left, MARGIN, left + cell, MARGIN + TILE_H + 2 * BORDER


def frame_colour(correct: bool | None) -> tuple[int, int, int]:
    return UNKNOWN_COLOUR if correct is None else CORRECT_COLOUR if correct else WRONG_COLOUR


def draw_ranklist(query: SearchImage, matches: list[dict], path: str) -> None:
    """Write the rank-list PNG: the query (blue frame) and its matches in rank order, framed
    green (same identity), red (another identity) or grey (identity unknown), with rank, cosine
    score and identity below each."""
    canvas = Image.new("RGB", ranklist_size(len(matches)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    tiles = [(query.path, QUERY_COLOUR, ["query", f"id {query.pid}" if query.pid else ""])]
    tiles += [(m["path"], frame_colour(m["correct"]),
               [f"{m['rank']}: {m['score']:.3f}", f"id {m['id']}" if m["id"] else ""])
              for m in matches]
    for position, (image_path, colour, caption) in enumerate(tiles):
        left, top, right, bottom = tile_box(position)
        draw.rectangle((left, top, right - 1, bottom - 1), fill=colour)
        image = ImageOps.pad(decode_rgb(image_path), (TILE_W, TILE_H), color=BACKGROUND)
        canvas.paste(image, (left + BORDER, top + BORDER))
        for line_no, text in enumerate(caption):
            draw.text((left, bottom + 2 + 12 * line_no), text[:12], fill=(0, 0, 0), font=font)
    atomic_write(path, lambda f: canvas.save(f, format="PNG"))


def ranklist_name(index: int, image: SearchImage) -> str:
    """'<query index>_[<id>_]<file stem>.png', reduced to safe characters."""
    stem = os.path.splitext(os.path.basename(image.path))[0]
    name = f"{index:05d}_{image.pid}_{stem}" if image.pid else f"{index:05d}_{stem}"
    return safe_name(name) + ".png"

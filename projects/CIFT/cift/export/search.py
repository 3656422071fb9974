"""Search a gallery of person images with a trained model: features, transfer, rank, rank lists.

Images come from folders (every image file under them, recursively) or are named one by one.
An image's identity is the name of its parent folder (`.../<pid>/<image>`), except for an image
lying directly in a folder given as the query or gallery, whose identity is unknown. A file
that cannot be decoded is skipped with a warning naming it (and listed in results.json), so
that one bad file does not stop a search over thousands; a folder without any image, or whose
images all fail to decode, is an error.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write, atomic_write_json
from ..data.transforms import build_vi_transforms
from ..errors import CiftInputError
from ..evaluation.tasks import BRANCH_OF_QUERY_MODALITY
from ..evaluation.vi_evaluator import GRAPH_BRANCHES
from ..modeling.graph import nearest_neighbours

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
RESULTS_FILE = "results.json"
RANKLIST_DIR = "ranklists"

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


@dataclass(frozen=True)
class SearchImage:
    path: str
    pid: str | None  # from the parent folder's name; None when unknown


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def collect_images(paths: Sequence[str], what: str) -> list[SearchImage]:
    """The images named by `paths` (folders: every image file under them, sorted; files: as
    given), each with its identity, without duplicates.

    Raises:
        CiftInputError: a path that does not exist, or a folder with no image file.
    """
    images: dict[str, SearchImage] = {}
    for path in paths:
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


def read_image(path: str) -> Image.Image:
    """The decoded RGB image (infrared images are replicated to 3 channels, as in training)."""
    with Image.open(path) as image:
        return image.convert("RGB")


class ImageFiles(Dataset):
    """(index, image tensor or None, error or None) per path: decoding errors are returned, not
    raised, so that the loader can skip the file."""

    def __init__(self, paths: Sequence[str], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            return index, self.transform(read_image(self.paths[index])), None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            # PIL raises SyntaxError for some malformed files (broken PNG chunks)
            text = str(err).strip()
            return index, None, text.splitlines()[0] if text else type(err).__name__


def _collate(batch):
    kept = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, err) for i, x, err in batch if x is None]
    images = torch.stack([x for _, x in kept]) if kept else None
    return [i for i, _ in kept], images, failed


class Progress:
    """'label: done/total images' on stderr: redrawn in place on a terminal, every 10%
    otherwise (logs)."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last_decile = -1

    def update(self, n: int) -> None:
        self.done += n
        line = f"{self.label}: {self.done}/{self.total} images"
        if self.tty:
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.stream.write(f"\r{line} [{'#' * filled}{'.' * (width - filled)}]")
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            decile = 10 * self.done // max(self.total, 1)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(line + "\n")
        self.stream.flush()


@torch.no_grad()
def extract_features(model, paths: Sequence[str], transform, branch: str | None = None,
                     batch_size: int = 64, num_workers: int = 0, flip: bool = False,
                     label: str = "features", progress: bool = True
                     ) -> tuple[torch.Tensor, list[int], list[tuple]]:
    """Inference features of the images at `paths`, batch by batch (only `branch`'s of a
    CIFT model's (B, 2, d) output are kept).

    Returns:
        (features (N', d) on the CPU, the indices into `paths` of those N' decoded images,
        [(path, error)] of the skipped ones). `flip` averages with the mirrored images
        (TEST.FLIP.ENABLED, as fastreid's evaluation does).
    """
    loader = DataLoader(ImageFiles(paths, transform), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_collate)
    bar = Progress(label, len(paths)) if progress else None
    feats, kept, skipped = [], [], []
    model.eval()
    for indices, images, failed in loader:
        for i, err in failed:
            logger.warning(f"{paths[i]}: cannot decode image, skipped ({err})")
            skipped.append((paths[i], err))
        if images is not None:
            out = model(images)
            if flip:
                out = (out + model(images.flip(dims=[3]))) / 2
            feats.append(branch_features(out, branch).float().cpu())
            kept.extend(indices)
        if bar is not None:
            bar.update(len(indices) + len(failed))
    if not feats:
        return torch.zeros(0), kept, skipped
    return torch.cat(feats), kept, skipped


def branch_features(feats: torch.Tensor, branch: str | None) -> torch.Tensor:
    """(N, d) features of a graph branch from CIFT's (N, 2, d) output; (N, d) as they are."""
    return feats if feats.ndim == 2 else feats[:, GRAPH_BRANCHES.index(branch)]


def search_features(model, queries: torch.Tensor, gallery: torch.Tensor, branch: str | None,
                    transfer: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(queries, gallery) features to rank by cosine: a branch's (Q, d), (G, d) BNNeck
    features, transferred on the [gallery ; queries] graph by the model
    (`transfer_test_features`, which picks a scalable path for large graphs) when `transfer`."""
    if transfer:
        gallery, queries = model.transfer_test_features(gallery, queries, branch)
    return queries.float().cpu(), gallery.float().cpu()


def rank(queries: torch.Tensor, gallery: torch.Tensor, topk: int
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, k) cosine similarities, descending, and (Q, k) gallery indices; k = min(topk, G).
    Blocked over queries, so no (Q, G) matrix is held at once."""
    return nearest_neighbours(queries, gallery, topk)


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
        image = ImageOps.pad(read_image(image_path), (TILE_W, TILE_H), color=BACKGROUND)
        canvas.paste(image, (left + BORDER, top + BORDER))
        for line_no, text in enumerate(caption):
            draw.text((left, bottom + 2 + 12 * line_no), text[:12], fill=(0, 0, 0), font=font)
    atomic_write(path, lambda f: canvas.save(f, format="PNG"))


def ranklist_name(index: int, image: SearchImage) -> str:
    """'<query index>_[<id>_]<file stem>.png', reduced to safe characters."""
    stem = os.path.splitext(os.path.basename(image.path))[0]
    name = f"{index:05d}_{image.pid}_{stem}" if image.pid else f"{index:05d}_{stem}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) + ".png"


def _previous_ranklists(output: str) -> list[str]:
    """Rank lists listed by an earlier results.json in `output` (removed before rewriting)."""
    try:
        with open(os.path.join(output, RESULTS_FILE)) as f:
            return [q["ranklist"] for q in json.load(f).get("queries", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def require_decoded(kept: list[int], total: int, what: str, paths: Sequence[str]) -> None:
    """An error naming the folders when none of their images could be decoded."""
    if not kept:
        raise CiftInputError(f"{what} {', '.join(paths)}: none of its {total} image files "
                             "could be decoded")


def run_search(cfg, model, query: Sequence[str], query_modality: str, gallery: Sequence[str],
               gallery_modality: str, output: str, topk: int = 10, transfer: bool = True,
               batch_size: int | None = None, progress: bool = True) -> dict:
    """Rank the gallery for every query image and write `output`/results.json and one
    rank-list PNG per query in `output`/ranklists/.

    A CIFT model ranks with the graph branch of the query modality (visible -> r2i,
    infrared -> i2r), transferred on the [gallery ; queries] graph unless `transfer` is False;
    a model without graph branches ranks its BNNeck features.
    """
    for name, modality in (("--query-modality", query_modality),
                           ("--gallery-modality", gallery_modality)):
        if modality not in BRANCH_OF_QUERY_MODALITY:
            raise CiftInputError(f"{name} {modality!r}: expected one of "
                                 f"{tuple(BRANCH_OF_QUERY_MODALITY)}")
    if topk < 1:
        raise CiftInputError(f"--topk {topk}: expected at least 1")
    query_images = collect_images(query, "--query")
    gallery_images = collect_images(gallery, "--gallery")
    graph = hasattr(model, "transfer_test_features")
    branch = BRANCH_OF_QUERY_MODALITY[query_modality] if graph else None
    transfer = transfer and graph
    transform = build_vi_transforms(cfg, is_train=False)
    common = dict(branch=branch, batch_size=batch_size or cfg.TEST.IMS_PER_BATCH,
                  num_workers=cfg.DATALOADER.NUM_WORKERS, flip=cfg.TEST.FLIP.ENABLED,
                  progress=progress)
    g_feats, g_kept, g_skipped = extract_features(
        model, [im.path for im in gallery_images], transform, label="gallery", **common)
    require_decoded(g_kept, len(gallery_images), "--gallery", gallery)
    gallery_images = [gallery_images[i] for i in g_kept]
    q_feats, q_kept, q_skipped = extract_features(
        model, [im.path for im in query_images], transform, label="query", **common)
    require_decoded(q_kept, len(query_images), "--query", query)
    query_images = [query_images[i] for i in q_kept]

    q, g = search_features(model, q_feats, g_feats, branch, transfer)
    scores, indices = rank(q, g, topk)

    os.makedirs(os.path.join(output, RANKLIST_DIR), exist_ok=True)
    for stale in _previous_ranklists(output):
        stale_path = os.path.join(output, stale)
        if os.path.dirname(os.path.normpath(stale)) == RANKLIST_DIR and os.path.isfile(
                stale_path):
            os.remove(stale_path)
    entries = []
    for qi, image in enumerate(query_images):
        matches = []
        for r, (score, gi) in enumerate(zip(scores[qi].tolist(), indices[qi].tolist()), 1):
            match = gallery_images[gi]
            known = image.pid is not None and match.pid is not None
            matches.append({"rank": r, "path": match.path, "id": match.pid,
                            "score": round(float(score), 6),
                            "correct": (match.pid == image.pid) if known else None})
        ranklist = os.path.join(RANKLIST_DIR, ranklist_name(qi, image))
        draw_ranklist(image, matches, os.path.join(output, ranklist))
        entries.append({"path": image.path, "id": image.pid, "ranklist": ranklist,
                        "matches": matches})
    results = {
        "query_modality": query_modality, "gallery_modality": gallery_modality,
        "branch": branch, "transfer": transfer, "topk": topk,
        "similarity": "cosine", "weights": cfg.MODEL.WEIGHTS,
        "num_queries": len(query_images), "gallery_size": len(gallery_images),
        "skipped": [{"path": p, "error": e} for p, e in g_skipped + q_skipped],
        "queries": entries,
    }
    atomic_write_json(os.path.join(output, RESULTS_FILE), results)
    return results

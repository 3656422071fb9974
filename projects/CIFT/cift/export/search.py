"""Search a gallery of person images with a trained model: features, transfer, rank, and the
results (results.json and one rank-list PNG per query).

Images are named as :mod:`cift.export.image_folders` reads them. A file that cannot be decoded,
or whose name is not UTF-8 (results.json could not name it), is skipped with a warning naming
it and listed in results.json's "skipped"; a folder without any image, or whose images all
fail, is an error. The output folder is checked before any work and locked (one search at a
time, :mod:`cift.engine.output_lock`) before anything is written into it.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence

import torch

from ..atomic import atomic_write_json
from ..branches import BRANCH_OF_QUERY_MODALITY, branch_features
from ..data.build import build_inference_loader
from ..data.images import display_path
from ..data.transforms import build_vi_transforms
from ..engine.output_lock import check_output_dir, lock_output_dir
from ..errors import CiftInputError
from ..evaluation.features import extract_features as model_features
from ..neighbours import nearest_neighbours
from .image_folders import ImageFiles, collate_decoded, collect_images, split_utf8_names
from .ranklist import draw_ranklist, ranklist_name

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
RANKLIST_DIR = "ranklists"


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
    loader = build_inference_loader(ImageFiles(paths, transform), batch_size, num_workers,
                                    collate_fn=collate_decoded)
    bar = Progress(label, len(paths)) if progress else None
    kept, skipped = [], []

    def decoded() -> Iterator[torch.Tensor]:
        for indices, images, failed in loader:
            for i, err in failed:
                logger.warning(f"{display_path(paths[i])}: cannot decode image, skipped ({err})")
                skipped.append((paths[i], err))
            if images is not None:
                yield images  # its features are computed before this generator resumes
                kept.extend(indices)
            if bar is not None:
                bar.update(len(indices) + len(failed))

    feats = model_features(model, decoded(), flip=flip,
                           select=lambda out: branch_features(out, branch))
    return feats, kept, skipped


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


def _previous_ranklists(output: str) -> list[str]:
    """Rank lists listed by an earlier results.json in `output` (removed before rewriting)."""
    try:
        with open(os.path.join(output, RESULTS_FILE)) as f:
            return [q["ranklist"] for q in json.load(f).get("queries", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def require_decoded(kept: Sequence, total: int, what: str, paths: Sequence[str]) -> None:
    """An error naming the folders when none of their images could be decoded (or named)."""
    if not kept:
        raise CiftInputError(f"{what} {', '.join(display_path(p) for p in paths)}: none of its "
                             f"{total} image files could be decoded (or has a UTF-8 name)")


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
    check_output_dir(output, "--output")
    query_images, q_unnamed = split_utf8_names(collect_images(query, "--query"))
    gallery_images, g_unnamed = split_utf8_names(collect_images(gallery, "--gallery"))
    for path, why in g_unnamed + q_unnamed:
        logger.warning(f"{path}: skipped ({why})")
    require_decoded(gallery_images, len(g_unnamed), "--gallery", gallery)
    require_decoded(query_images, len(q_unnamed), "--query", query)
    graph = hasattr(model, "transfer_test_features")
    branch = BRANCH_OF_QUERY_MODALITY[query_modality] if graph else None
    transfer = transfer and graph
    transform = build_vi_transforms(cfg, is_train=False)
    common = dict(branch=branch, batch_size=batch_size or cfg.TEST.IMS_PER_BATCH,
                  num_workers=cfg.DATALOADER.NUM_WORKERS, flip=cfg.TEST.FLIP.ENABLED,
                  progress=progress)
    g_feats, g_kept, g_skipped = extract_features(
        model, [im.path for im in gallery_images], transform, label="gallery", **common)
    require_decoded(g_kept, len(gallery_images) + len(g_unnamed), "--gallery", gallery)
    gallery_images = [gallery_images[i] for i in g_kept]
    q_feats, q_kept, q_skipped = extract_features(
        model, [im.path for im in query_images], transform, label="query", **common)
    require_decoded(q_kept, len(query_images) + len(q_unnamed), "--query", query)
    query_images = [query_images[i] for i in q_kept]

    q, g = search_features(model, q_feats, g_feats, branch, transfer)
    scores, indices = rank(q, g, topk)

    lock_output_dir(output, "--output")
    os.makedirs(os.path.join(output, RANKLIST_DIR), exist_ok=True)
    for stale in _previous_ranklists(output):
        stale_path = os.path.join(output, stale)
        if os.path.dirname(os.path.normpath(stale)) == RANKLIST_DIR and os.path.isfile(
                stale_path):
            os.remove(stale_path)
    entries = []
    for qi, image in enumerate(query_images):
        matches = []
        ranked = zip(scores[qi].tolist(), indices[qi].tolist(), strict=True)
        for r, (score, gi) in enumerate(ranked, 1):
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
        "skipped": [{"path": display_path(p), "error": e}
                    for p, e in g_unnamed + g_skipped + q_unnamed + q_skipped],
        "queries": entries,
    }
    atomic_write_json(os.path.join(output, RESULTS_FILE), results)
    return results

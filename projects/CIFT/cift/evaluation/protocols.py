"""VI-ReID evaluation protocols of SYSU-MM01, RegDB and LLCM: the public names in one place.

Pure numpy and stdlib, so it can be used without torch or fastreid. The protocols reproduce the
public reference code, including its ranking ties, its per-identity CMC and its single-shot
random draws: ``eval_sysu``, ``eval_regdb`` and ``process_gallery_sysu`` of Ye et al.
(https://github.com/mangye16/Cross-Modal-Re-ID-baseline, also used by AGW and DEEN), and
``eval_llcm`` and ``process_gallery_llcm`` of Zhang and Wang (https://github.com/ZYK100/LLCM).
Each subject has its module:

- :mod:`cift.evaluation.galleries`: the per-trial gallery draws (``sample_*_gallery``) and the
  cameras of each data set;
- :mod:`cift.evaluation.metrics`: CMC, mAP and mINP of a distance matrix (``evaluate_*``);
- :mod:`cift.evaluation.top_r`: the same protocols scored from each query's nearest gallery
  items, found by a caller-supplied search (:data:`Search`), for galleries too large for a
  distance matrix (``evaluate_*_top_r``).
"""

from __future__ import annotations

from .galleries import (
    LLCM_CAMERAS,
    SYSU_CAMERAS,
    SYSU_QUERY_CAMERAS,
    sample_llcm_gallery,
    sample_sysu_gallery,
)
from .metrics import CMC_MODES, evaluate_llcm, evaluate_regdb, evaluate_sysu
from .top_r import Search, evaluate_llcm_top_r, evaluate_regdb_top_r, evaluate_sysu_top_r

__all__ = [
    "CMC_MODES",
    "LLCM_CAMERAS",
    "SYSU_CAMERAS",
    "SYSU_QUERY_CAMERAS",
    "Search",
    "evaluate_llcm",
    "evaluate_llcm_top_r",
    "evaluate_regdb",
    "evaluate_regdb_top_r",
    "evaluate_sysu",
    "evaluate_sysu_top_r",
    "sample_llcm_gallery",
    "sample_sysu_gallery",
]

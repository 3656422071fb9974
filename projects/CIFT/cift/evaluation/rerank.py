"""k-reciprocal re-ranking (TEST.RERANK) for the VI protocols, on the CPU or the GPU."""
from __future__ import annotations

import numpy as np
import torch

from .distances import l2_normalise


def k_reciprocal_distance(queries: np.ndarray, gallery: np.ndarray, original: np.ndarray,
                          k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked distances (Zhong et al., "Re-ranking Person Re-identification with
    k-reciprocal Encoding", CVPR 2017), as fastreid's ReidEvaluator combines them:
    ``jaccard * (1 - lambda) + original * lambda``.

    The Jaccard distance is fastreid's `compute_jaccard_distance` over the L2-normalised
    [queries ; gallery] features (its faiss search runs on the GPU when there is one, on the CPU
    otherwise, through `cift.compat.cpu_safe_rerank`). k1 and k2 are cut to the number of nodes.

    Args:
        queries: (Q, d), gallery: (G, d) features. original: (Q, G) distances to re-rank.
    Returns:
        (Q, G) float32 distances.
    """
    from fastreid.utils.compute_dist import build_dist

    n = queries.shape[0] + gallery.shape[0]
    k1, k2 = max(1, min(k1, n - 1)), max(1, min(k2, n - 1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    q = torch.from_numpy(l2_normalise(queries).astype(np.float32)).to(device)
    g = torch.from_numpy(l2_normalise(gallery).astype(np.float32)).to(device)
    jaccard = build_dist(q, g, metric="jaccard", k1=k1, k2=k2)
    return (jaccard * (1 - lambda_value) + original * lambda_value).astype(np.float32)

"""The graph branches of a CIFT model, named once for the model, the evaluation, the export and
the analysis.

A branch is named after the half of a training batch that plays the queries in its graph: r2i
(visible queries against the infrared half), i2r (infrared queries). At test time a query is
served by the branch trained with queries of its own modality.
"""
from __future__ import annotations

R2I, I2R = "r2i", "i2r"
# The branches in order: also the order of a CIFT model's (B, 2, d) inference output.
BRANCHES = (R2I, I2R)
# The branch that serves queries of a modality.
BRANCH_OF_QUERY_MODALITY = {"visible": R2I, "infrared": I2R}

__all__ = ["BRANCHES", "BRANCH_OF_QUERY_MODALITY", "I2R", "R2I", "branch_features"]


def branch_features(features, branch: str | None):
    """The features of `branch` from a model's inference output.

    Args:
        features: (N, d) (a model without graph branches: returned as they are) or (N, 2, d)
            (a CIFT model, branches in :data:`BRANCHES` order); numpy array or tensor.
        branch: one of :data:`BRANCHES` (may be None for (N, d) features).

    Returns:
        (N, d) features of the same type.
    """
    return features if features.ndim == 2 else features[:, BRANCHES.index(branch)]

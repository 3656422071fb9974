"""Topology diagnostics (supplementary §1, §4): feature and affinity quality measures, the toy
experiment, the evaluation hook and the figures.

- :mod:`.topology`: GR, Q_X / Q_Y, Q_A and the affinity error rate (pure functions);
- :mod:`.toy_experiment`: random {X, A, Y = A·X} with controlled Q_X and Q_A;
- :mod:`.probe`: the measures on a model's test graph; :mod:`.hooks`: TopologyHook;
- :mod:`.plots`: CMC curves, toy heat map and surface, affinity neighbour grids.

Only :mod:`.topology` is imported here; the others load on use (matplotlib only when drawing).
"""
from .topology import (
    affinity_error_rate,
    affinity_pair_order,
    affinity_quality,
    feature_quality,
    grouping_margin,
)

__all__ = ["affinity_error_rate", "affinity_pair_order", "affinity_quality", "feature_quality",
           "grouping_margin"]

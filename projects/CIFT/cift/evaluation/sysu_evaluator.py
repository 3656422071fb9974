"""fastreid evaluator running the SYSU-MM01 protocol (4 settings x 10 trials) on one extraction."""
from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from fastreid.evaluation.evaluator import DatasetEvaluator
from fastreid.utils import comm

from .sysu_runs import cosine_distance, run_sysu_protocol

logger = logging.getLogger(__name__)

# Order of the graph branches in a CIFT model's (B, 2, d) inference output.
GRAPH_BRANCHES = ("r2i", "i2r")
# SYSU-MM01 queries are infrared: the branch trained with infrared queries serves them.
SYSU_QUERY_BRANCH = "i2r"
# Result keys: CIFT ranks transferred features, CIFT† the BNNeck features without transfer.
TRANSFERRED, BNNECK_ONLY = "CIFT", "CIFT†"

# (gallery (G, d), queries (Q, d), branch) -> transferred (gallery, queries), L2-normalised.
GraphTransfer = Callable[[np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray]]


def transferred_distance(transfer: GraphTransfer, branch: str):
    """Distance of the test-time transfer: cosine between transferred queries and gallery."""
    def distance(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        g, q = transfer(gallery, queries, branch)
        return cosine_distance(q, g)
    return distance


class SYSUEvaluator(DatasetEvaluator):
    """Collects features of the query and gallery-pool images once, then draws each trial's
    gallery from the pool and reports mean and std of R1/R5/R10/R20/mAP/mINP per setting.

    Features (N, d) (VIBaseline) are ranked by cosine distance; the returned dict maps
    "<mode>-<single|multi>" to metrics. Features (N, 2, d) (CIFT: r2i and i2r BNNeck features)
    use the branch of the queries' modality and are reported twice, as "CIFT" (transferred on
    each trial's [gallery ; queries] graph by `transfer`) and "CIFT†" (no transfer). `metric`
    (TEST.SYSU.MAIN_METRIC, of CIFT for a CIFT model) is what fastreid's checkpointer uses to keep
    `model_best`.
    """

    def __init__(self, cfg, query_items: list[tuple], pool_items: list[tuple],
                 transfer: GraphTransfer | None = None):
        self.cfg = cfg
        self.query_items = list(query_items)
        self.pool_items = list(pool_items)
        self.transfer = transfer
        self.reset()

    def reset(self) -> None:
        self._features: list[torch.Tensor] = []
        self._paths: list[str] = []

    def process(self, inputs: dict, outputs: torch.Tensor) -> None:
        self._features.append(outputs.detach().float().cpu())
        self._paths.extend(inputs["img_paths"])

    def gathered(self) -> tuple[np.ndarray, list[str]] | None:
        """All ranks' features and paths on the main process (None elsewhere)."""
        feats, paths = self._features, self._paths
        if comm.get_world_size() > 1:
            comm.synchronize()
            feats = list(itertools.chain(*comm.gather(feats, dst=0)))
            paths = list(itertools.chain(*comm.gather(paths, dst=0)))
            if not comm.is_main_process():
                return None
        return torch.cat(feats).numpy(), paths

    def evaluate(self) -> OrderedDict:
        gathered = self.gathered()
        if gathered is None:
            return OrderedDict()
        feats, paths = gathered
        row = {path: i for i, path in enumerate(paths)}
        missing = [it[0] for it in self.query_items + self.pool_items if it[0] not in row]
        if missing:
            raise RuntimeError(f"evaluator got no feature for {len(missing)} images, "
                               f"e.g. {missing[0]}")
        q = feats[[row[it[0]] for it in self.query_items]]
        g = feats[[row[it[0]] for it in self.pool_items]]
        t = self.cfg.TEST.SYSU

        def run(query_feats, pool_feats, distance=cosine_distance):
            return run_sysu_protocol(query_feats, pool_feats, self.query_items, self.pool_items,
                                     modes=t.MODES, shots=t.SHOTS, trials=t.TRIALS,
                                     distance=distance)

        if feats.ndim == 2:
            results = main = run(q, g)
        else:
            if self.transfer is None:
                raise ValueError("graph-branch features (N, 2, d) need a test-time transfer")
            b = GRAPH_BRANCHES.index(SYSU_QUERY_BRANCH)
            results = OrderedDict()
            results[TRANSFERRED] = main = run(
                q[:, b], g[:, b], transferred_distance(self.transfer, SYSU_QUERY_BRANCH))
            results[BNNECK_ONLY] = run(q[:, b], g[:, b])
        setting, _, name = t.MAIN_METRIC.partition("/")
        if setting not in main or name not in main[setting]:
            raise KeyError(f"TEST.SYSU.MAIN_METRIC {t.MAIN_METRIC!r}: not among the "
                           f"reported settings {list(main)}")
        results["metric"] = main[setting][name]
        return results

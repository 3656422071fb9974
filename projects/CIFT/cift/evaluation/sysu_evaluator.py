"""fastreid evaluator running the SYSU-MM01 protocol (4 settings x 10 trials) on one extraction."""
from __future__ import annotations

import itertools
import logging
from collections import OrderedDict

import numpy as np
import torch
from fastreid.evaluation.evaluator import DatasetEvaluator
from fastreid.utils import comm

from .sysu_runs import run_sysu_protocol

logger = logging.getLogger(__name__)


class SYSUEvaluator(DatasetEvaluator):
    """Collects features of the query and gallery-pool images once, then draws each trial's
    gallery from the pool and reports mean and std of R1/R5/R10/R20/mAP/mINP per setting.

    The returned dict maps "<mode>-<single|multi>" to metrics, plus `metric` (TEST.SYSU.
    MAIN_METRIC), which fastreid's checkpointer uses to keep `model_best`.
    """

    def __init__(self, cfg, query_items: list[tuple], pool_items: list[tuple]):
        self.cfg = cfg
        self.query_items = list(query_items)
        self.pool_items = list(pool_items)
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
        results = run_sysu_protocol(q, g, self.query_items, self.pool_items, modes=t.MODES,
                                    shots=t.SHOTS, trials=t.TRIALS)
        setting, _, name = t.MAIN_METRIC.partition("/")
        if setting not in results or name not in results[setting]:
            raise KeyError(f"TEST.SYSU.MAIN_METRIC {t.MAIN_METRIC!r}: not among the "
                           f"reported settings {list(results)}")
        results["metric"] = results[setting][name]
        return results

"""TopologyHook: Q_X, Q_Y, Q_A and the affinity error rate of the test graph, logged with the
evaluations (tensorboard scalars through the trainer's EventStorage, and the log)."""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence

from fastreid.engine.train_loop import HookBase
from fastreid.utils import comm

from .probe import MEASURES, EvalGraph, Probe, build_probe, extract_features, probe_measures

__all__ = ["TopologyHook", "build_topology_hook"]

logger = logging.getLogger(__name__)


class TopologyHook(HookBase):
    """Every `eval_period` epochs and after the last one (as fastreid's EvalHook), extract the
    features of each probe (:func:`cift.analysis.probe.build_probe`) and put

        topology/<data set>/<task>/{Q_X, Q_Y, Q_A, error_mass, error_edges}

    into the trainer's storage (written by its tensorboard / JSON writers) and a table into
    the log. X is the model's inference output (a CIFT model: the branch serving the task's
    queries), A its test-time affinity (default H2FT graph for a model without one), Y = A·X.

    Only the main process measures (the model's own module, not DDP); the others wait at the
    barrier.
    """

    def __init__(self, model, probes: Sequence[Probe], eval_period: int,
                 flip_test: bool = False, prefix: str = "topology"):
        self.model = model
        self.probes = list(probes)
        self.period = eval_period
        self.flip_test = flip_test
        self.prefix = prefix
        self.last: OrderedDict[str, float] = OrderedDict()

    def measure(self) -> OrderedDict[str, float]:
        """{"<prefix>/<data set>/<task>/<measure>": value} for every probe and task."""
        scalars: OrderedDict[str, float] = OrderedDict()
        device = next(self.model.parameters()).device
        for probe in self.probes:
            features = extract_features(self.model, probe.loader, self.flip_test)
            by_task = probe_measures(features, probe, lambda b: EvalGraph.of(self.model, b),
                                     device)
            for task, values in by_task.items():
                for name, value in values.items():
                    scalars[f"{self.prefix}/{probe.name}/{task}/{name}"] = value
            logger.info(f"Topology of {probe.name} (query rows of the test graph):\n"
                        + format_measures(by_task))
        return scalars

    def _run(self) -> None:
        if comm.is_main_process():
            self.last = self.measure()
            finite = {k: v for k, v in self.last.items() if math.isfinite(v)}
            if finite:
                self.trainer.storage.put_scalars(**finite, smoothing_hint=False)
        comm.synchronize()

    def after_epoch(self) -> None:
        next_epoch = self.trainer.epoch + 1
        if self.period > 0 and next_epoch % self.period == 0:
            self._run()

    def after_train(self) -> None:
        next_epoch = self.trainer.epoch + 1
        # as EvalHook: after a completed training, unless after_epoch has just measured
        if next_epoch >= self.trainer.max_epoch and (self.period <= 0
                                                      or next_epoch % self.period != 0):
            self._run()


def format_measures(by_task: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per task, one column per measure."""
    from tabulate import tabulate

    rows = [[task, *(values[m] for m in MEASURES)] for task, values in by_task.items()]
    return tabulate(rows, headers=["task", *MEASURES], tablefmt="pipe", floatfmt=".4f")


def build_topology_hook(cfg, model) -> TopologyHook | None:
    """The hook for every DATASETS.TESTS entry when TEST.TOPOLOGY.ENABLED, else None.

    Period TEST.EVAL_PERIOD; TEST.TOPOLOGY.MAX_QUERIES queries per task (0 = all);
    TEST.TOPOLOGY.TASKS the tasks measured (empty = all of each test set); flip as TEST.FLIP.
    """
    topology = cfg.TEST.get("TOPOLOGY")
    if topology is None or not topology.ENABLED:
        return None
    max_queries = topology.MAX_QUERIES if topology.MAX_QUERIES > 0 else None
    tasks = tuple(topology.get("TASKS", ())) or None
    # only the main process measures
    probes = ([build_probe(cfg, name, max_queries, task_names=tasks)
               for name in cfg.DATASETS.TESTS] if comm.is_main_process() else [])
    return TopologyHook(model, probes, cfg.TEST.EVAL_PERIOD, flip_test=cfg.TEST.FLIP.ENABLED)

"""fastreid evaluator running a VI-ReID protocol (SYSU-MM01, RegDB, LLCM) on one extraction."""
from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from fastreid.evaluation.evaluator import DatasetEvaluator
from fastreid.utils import comm

from ..branches import BRANCHES, branch_features
from ..search_settings import search_backend
from .distances import RAW_DTYPE, Trial, l2_normalise, negative_inner_product
from .rerank import k_reciprocal_distance
from .retrieval import check_retrieval, feature_search
from .tasks import Retrieval, Task, TrialDistances, run_tasks, run_tasks_top_r

logger = logging.getLogger(__name__)

# Result keys: CIFT ranks transferred features, CIFT† the BNNeck features without transfer.
TRANSFERRED, BNNECK_ONLY = "CIFT", "CIFT†"

# (gallery (G, d), queries (Q, d), branch) -> transferred (gallery, queries), L2-normalised,
# float32 (the precision the transfer computes in).
GraphTransfer = Callable[[np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray]]
# (N, d) feature arrays of a features file (features_file.FEATURE_FIELDS) -> None
FeaturesSink = Callable[[dict[str, np.ndarray]], None]


@runtime_checkable
class TrialsTransfer(Protocol):
    """A :data:`GraphTransfer` that also transfers all trials of a branch together, sharing
    their work (`cift.modeling.pool_transfer.PoolTransfer`)."""

    def __call__(self, gallery: np.ndarray, queries: np.ndarray, branch: str
                 ) -> tuple[np.ndarray, np.ndarray]: ...

    def over_trials(self, x: np.ndarray, trials: Sequence[Trial], branch: str
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x[g], x[q]) transferred of each (q, g) trial of the (N, d) features x, in order."""

    def distances_over_trials(self, x: np.ndarray, trials: Sequence[Trial], branch: str
                              ) -> Iterator[np.ndarray]:
        """−q'·g'ᵀ (Q, G) of each trial's transferred features, in order."""


def transferred_trials(transfer: GraphTransfer, x: np.ndarray, trials: Sequence[Trial],
                       branch: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(gallery, queries) transferred of each (q, g) trial of the (N, d) features x: together
    when `transfer` is a :class:`TrialsTransfer`, else trial by trial."""
    if isinstance(transfer, TrialsTransfer):
        return transfer.over_trials(x, trials, branch)
    return (transfer(x[g], x[q], branch) for q, g in trials)


def protocol_distance(transfer: GraphTransfer | None = None, branch: str = "",
                      rerank: dict | None = None) -> TrialDistances | None:
    """(features (N, d), trials) -> each trial's distances: −q·gᵀ
    (`distances.negative_inner_product`) of the raw features in float64, or of the float32
    features the test-time transfer of `branch` gives when `transfer` is given (all trials from
    one neighbour search where it can: :func:`transferred_trials`, and without re-ranking
    their distances from the pool's products, `TrialsTransfer.distances_over_trials`); then
    k-reciprocal re-ranking when `rerank` holds its k1, k2 and lambda_value. None for the raw
    features without re-ranking: `run_tasks` ranks them from one product per branch."""
    if transfer is None and rerank is None:
        return None

    def distances(x: np.ndarray, trials: Sequence[Trial]) -> Iterator[np.ndarray]:
        if isinstance(transfer, TrialsTransfer) and rerank is None:
            yield from transfer.distances_over_trials(x, trials, branch)
            return
        if transfer is not None:
            pairs = transferred_trials(transfer, x, trials, branch)
        else:
            pairs = ((x[g].astype(RAW_DTYPE), x[q].astype(RAW_DTYPE)) for q, g in trials)
        for gallery, queries in pairs:
            dist = negative_inner_product(queries, gallery)
            # fastreid combines the Jaccard distance with the cosine distance 1 - q.g
            yield dist if rerank is None else k_reciprocal_distance(
                queries, gallery, 1.0 + dist, **rerank)
    return distances


def protocol_distances(transfer: GraphTransfer | None = None, rerank: dict | None = None
                       ) -> Callable[[str], TrialDistances] | None:
    """branch -> :func:`protocol_distance` of that branch; None for the raw features without
    re-ranking (see `run_tasks`)."""
    if transfer is None and rerank is None:
        return None
    return lambda branch: protocol_distance(transfer, branch, rerank)


def protocol_retrieval(transfer: GraphTransfer | None = None, branch: str = "",
                       backend: str = "torch", device: str = "cpu") -> Retrieval:
    """(queries, gallery) -> top-R search of one trial: the largest q·g of the features as given
    (the ranking of −q·gᵀ), after the test-time transfer of `branch` when `transfer` is given
    (TEST.RETRIEVAL, TEST.SEARCH; see `feature_search`)."""
    def retrieval(queries: np.ndarray, gallery: np.ndarray):
        if transfer is not None:
            gallery, queries = transfer(gallery, queries, branch)
        return feature_search(queries, gallery, backend, device)
    return retrieval


class VIEvaluator(DatasetEvaluator):
    """Collects the features of every test image once, then scores the protocol's tasks (each
    setting or direction, over its trials) and reports mean and std of R1/R5/R10/R20/mAP/mINP.

    Features are L2-normalised once (float32) and ranked by −q·gᵀ: the raw ones in float64 as
    the public test scripts do, so that their saved copy gives the public scripts' numbers. (N,
    d) features (VIBaseline) give one result per task name. (N, 2, d) features (CIFT: r2i and
    i2r BNNeck features) are reported twice, as "CIFT" (each trial's [gallery ; queries] graph
    transferred by `transfer` with the branch of the task's query modality) and "CIFT†" (the
    same branch, no transfer); (N, 3, d) outputs carry the backbone branch's BNNeck features
    last (for `save_features` only, see `cift.engine.saved_features`). With
    TEST.RERANK.ENABLED, every distance is k-reciprocal re-ranked afterwards. With
    TEST.RETRIEVAL.TOP_R = R > 0, each trial is scored from each query's R nearest gallery
    images instead (R1-R20 and mAP@R, see `run_tasks_top_r`). `metric` (TEST.MAIN_METRIC, of
    CIFT for a CIFT model) is what fastreid's checkpointer uses to keep `model_best`.
    `save_features`, when given, gets the normalised features in the items' order as a features
    file's arrays ("feats", and "feats_r2i" / "feats_i2r" for CIFT) before they are scored.
    """

    def __init__(self, cfg, items: list[tuple], tasks: list[Task],
                 transfer: GraphTransfer | None = None,
                 save_features: FeaturesSink | None = None):
        self.top_r = check_retrieval(cfg)
        self.cfg = cfg
        self.items = list(items)
        self.tasks = tasks
        self.transfer = transfer
        self.save_features = save_features
        self.reset()

    def reset(self) -> None:
        self._features: list[torch.Tensor] = []
        self._paths: list[str] = []
        # {setting label: (20,) CMC in percent} of the last evaluate(), for the CMC plot
        self.cmc_curves: dict[str, np.ndarray] = {}

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
        missing = [it[0] for it in self.items if it[0] not in row]
        if missing:
            raise RuntimeError(f"evaluator got no feature for {len(missing)} images, "
                               f"e.g. {missing[0]}")
        feats = feats[[row[it[0]] for it in self.items]]
        backbone = None
        if feats.ndim == 3 and feats.shape[1] == len(BRANCHES) + 1:
            feats, backbone = feats[:, :-1], l2_normalise(feats[:, -1])
        feats = l2_normalise(feats)  # once: what is ranked, transferred and saved
        if self.save_features is not None:
            self.save_features(saved_arrays(feats, backbone))
        r = self.cfg.TEST.RERANK
        rerank = dict(k1=r.K1, k2=r.K2, lambda_value=r.LAMBDA) if r.ENABLED else None
        backend, device = search_backend(self.cfg), self.cfg.MODEL.DEVICE

        def score(features, transfer: GraphTransfer | None, curves: dict) -> OrderedDict:
            if self.top_r:
                return run_tasks_top_r(
                    features, self.items, self.tasks,
                    lambda branch: protocol_retrieval(transfer, branch, backend, device),
                    self.top_r,
                    curves=curves)
            return run_tasks(features, self.items, self.tasks,
                             protocol_distances(transfer, rerank), curves=curves)

        self.cmc_curves = {}
        if feats.ndim == 2:
            results = main = score(lambda branch: feats, None, self.cmc_curves)
        else:
            if self.transfer is None:
                raise ValueError("graph-branch features (N, 2, d) need a test-time transfer")

            def branch_feats(branch: str) -> np.ndarray:
                return branch_features(feats, branch)

            results = OrderedDict()
            transferred, bnneck = {}, {}
            results[TRANSFERRED] = main = score(branch_feats, self.transfer, transferred)
            results[BNNECK_ONLY] = score(branch_feats, None, bnneck)
            for method, curves in ((TRANSFERRED, transferred), (BNNECK_ONLY, bnneck)):
                self.cmc_curves.update({f"{method} {k}": v for k, v in curves.items()})
        results["metric"] = main_metric(main, self.cfg.TEST.MAIN_METRIC)
        return results


def saved_arrays(feats: np.ndarray, backbone: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
    """A features file's arrays from (N, d) features, or from (N, 2, d) graph-branch features
    and the (N, d) backbone features: "feats" (the features, or the backbone's), "feats_r2i",
    "feats_i2r"."""
    if feats.ndim == 2:
        return {"feats": feats}
    if backbone is None:
        raise ValueError("graph-branch features (N, 2, d) are saved with the backbone's "
                         "(N, 3, d outputs, see cift.engine.saved_features)")
    return {"feats": backbone, **{f"feats_{b}": branch_features(feats, b) for b in BRANCHES}}


def main_metric(results: dict, key: str) -> float:
    """The value TEST.MAIN_METRIC ("<task>/<metric>", or "" for the first task's mAP, or its
    mAP@R with TEST.RETRIEVAL) names."""
    if key:
        task, _, name = key.partition("/")
    else:
        task = next(iter(results))
        name = next(m for m in results[task] if m == "mAP" or m.startswith("mAP@"))
    if task not in results or name not in results[task]:
        metrics = [m for m in next(iter(results.values())) if not m.endswith("_std")]
        raise KeyError(f"TEST.MAIN_METRIC {key!r}: not among the reported tasks "
                       f"{list(results)} and metrics {metrics}")
    return results[task][name]

"""Evaluation tasks of the VI-ReID benchmarks and the runner that scores features on them.

A task is one reported setting ("all-single" of SYSU-MM01, "visible-thermal" of RegDB, ...): its
query and gallery images for each trial, the metric function of its protocol, and the graph
branch that serves its queries (a CIFT model transfers with the branch trained with queries of
the same modality: visible queries -> r2i, infrared queries -> i2r). Numpy only.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice

import numpy as np

from ..branches import I2R, R2I
from ..errors import check_choice
from ..progress import progress
from .distances import RAW_DTYPE, PairwiseRankings, Trial, trial_rankings
from .galleries import sample_llcm_gallery, sample_sysu_gallery
from .metrics import CMC_MODES, evaluate_llcm, evaluate_regdb, evaluate_sysu
from .top_r import Search, evaluate_llcm_top_r, evaluate_regdb_top_r, evaluate_sysu_top_r

RANKS = (1, 5, 10, 20)
METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")

# (distmat, q_pids, g_pids, q_camids, g_camids, order=None) -> (cmc, mAP, mINP); order is
# np.argsort(distmat, axis=1) when the caller has it
Metric = Callable[..., tuple]
# (search, top_r, q_pids, g_pids, q_camids, g_camids) -> (cmc, mAP truncated at top_r)
TopRMetric = Callable[..., tuple]
# (query features (Q, d), gallery features (G, d)) -> (Q, G) distances
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (features (N, d), trials (query indices, gallery indices)) -> each trial's (Q, G) distances, in
# order (computed together where they share work)
TrialDistances = Callable[[np.ndarray, Sequence[Trial]], Iterator[np.ndarray]]
# (query features (Q, d), gallery features (G, d)) -> nearest-gallery search of the trial
Retrieval = Callable[[np.ndarray, np.ndarray], Search]


@dataclass(frozen=True)
class Task:
    """One reported setting: (query indices, gallery indices) per trial into the test items,
    scored by `metric` from distance matrices or by `top_r_metric` from ranked lists."""

    name: str
    branch: str
    metric: Metric
    trials: tuple[tuple[np.ndarray, np.ndarray], ...]
    top_r_metric: TopRMetric | None = None


def setting_name(mode: str, shots: int) -> str:
    """'all-single', 'indoor-multi' (10 shots), or 'all-5shot' for other shot counts."""
    kind = {1: "single", 10: "multi"}.get(shots, f"{shots}shot")
    return f"{mode}-{kind}"


def regdb_metric(distmat, q_pids, g_pids, q_camids, g_camids, order=None):
    """RegDB ignores cameras (query and gallery never share one)."""
    return evaluate_regdb(distmat, q_pids, g_pids, order=order)


def regdb_top_r_metric(search, top_r, q_pids, g_pids, q_camids, g_camids):
    """RegDB from ranked lists; cameras ignored as in :func:`regdb_metric`."""
    return evaluate_regdb_top_r(search, top_r, q_pids, g_pids)


def sysu_tasks(items: Sequence[tuple], num_query: int, modes=("all", "indoor"), shots=(1, 10),
               trials: int = 10, cmc_mode: str = "identity") -> list[Task]:
    """SYSU-MM01: infrared queries (items[:num_query]) against galleries drawn per trial from
    the visible pool (items[num_query:]); CMC identity- or image-level (`cmc_mode`)."""
    check_choice("TEST.CMC_MODE", cmc_mode, CMC_MODES)
    metric = partial(evaluate_sysu, cmc_mode=cmc_mode)
    top_r_metric = partial(evaluate_sysu_top_r, cmc_mode=cmc_mode)
    query = np.arange(num_query)
    pool = list(items[num_query:])
    tasks = []
    for mode in modes:
        for n in shots:
            draws = tuple((query, num_query + np.asarray(sample_sysu_gallery(
                pool, mode=mode, trial=t, shots=n), dtype=int)) for t in range(trials))
            tasks.append(Task(setting_name(mode, n), I2R, metric, draws, top_r_metric))
    return tasks


def regdb_tasks(items: Sequence[tuple], num_query: int) -> list[Task]:
    """RegDB: visible (items[:num_query]) and thermal test images of the run's split, in both
    directions; one trial per run (the split is the trial)."""
    visible, thermal = np.arange(num_query), np.arange(num_query, len(items))
    return [Task("visible-thermal", R2I, regdb_metric, ((visible, thermal),),
                 regdb_top_r_metric),
            Task("thermal-visible", I2R, regdb_metric, ((thermal, visible),),
                 regdb_top_r_metric)]


def llcm_tasks(items: Sequence[tuple], num_query: int, trials: int = 10, shots: int = 1,
               vis_to_ir: str = "semantic", cmc_mode: str = "identity") -> list[Task]:
    """LLCM: visible (items[:num_query]) and infrared test images, two directions, per trial a
    draw of one image per (identity, camera) of one modality (`sample_llcm_gallery`).

    - "infrared-visible" (the reference script's "IR to VIS"): every infrared image is a query,
      the gallery is the visible draw; branch i2r.
    - "visible-infrared" with `vis_to_ir="semantic"`: every visible image is a query, the
      gallery is the infrared draw; branch r2i.
    - "visible-infrared" with `vis_to_ir="reference"`: what the reference script labels "VIS
      to IR" and its published numbers measure: the infrared draw are the *queries*, every
      visible image the gallery; branch i2r (the queries are infrared).

    The CMC is identity-level (the reference) or image-level (`cmc_mode`).
    """
    check_choice("TEST.LLCM.VIS_TO_IR", vis_to_ir, ("semantic", "reference"))
    check_choice("TEST.CMC_MODE", cmc_mode, CMC_MODES)
    metric = partial(evaluate_llcm, cmc_mode=cmc_mode)
    top_r_metric = partial(evaluate_llcm_top_r, cmc_mode=cmc_mode)
    visible, infrared = np.arange(num_query), np.arange(num_query, len(items))

    def draws(pool: np.ndarray) -> list[np.ndarray]:
        pool_items = [items[i] for i in pool]
        return [pool[np.asarray(sample_llcm_gallery(pool_items, trial=t, shots=shots), dtype=int)]
                for t in range(trials)]

    ir_to_vis = Task("infrared-visible", I2R, metric,
                     tuple((infrared, g) for g in draws(visible)), top_r_metric)
    if vis_to_ir == "semantic":
        vis = Task("visible-infrared", R2I, metric,
                   tuple((visible, g) for g in draws(infrared)), top_r_metric)
    else:
        vis = Task("visible-infrared", I2R, metric,
                   tuple((q, visible) for q in draws(infrared)), top_r_metric)
    return [vis, ir_to_vis]


def build_tasks(cfg, protocol: str, items: Sequence[tuple], num_query: int) -> list[Task]:
    """The tasks of a data set's protocol ("sysu", "regdb" or "llcm") from the TEST.* keys."""
    if protocol == "sysu":
        s = cfg.TEST.SYSU
        return sysu_tasks(items, num_query, modes=s.MODES, shots=s.SHOTS, trials=s.TRIALS,
                          cmc_mode=cfg.TEST.CMC_MODE)
    if protocol == "regdb":
        # RegDB's CMC is image-level under either TEST.CMC_MODE (its reference code's)
        check_choice("TEST.CMC_MODE", cfg.TEST.CMC_MODE, CMC_MODES)
        return regdb_tasks(items, num_query)
    if protocol == "llcm":
        c = cfg.TEST.LLCM
        return llcm_tasks(items, num_query, trials=c.TRIALS, shots=c.SHOTS,
                          vis_to_ir=c.VIS_TO_IR, cmc_mode=cfg.TEST.CMC_MODE)
    raise ValueError(f"unknown evaluation protocol {protocol!r}; known: sysu, regdb, llcm")


def metric_names(top_r: int = 0) -> tuple[str, ...]:
    """Reported metrics: :data:`METRICS` from full rankings; R1-R20 and ``mAP@<top_r>`` (AP
    truncated at top_r, no mINP) from top-R lists."""
    return METRICS if not top_r else tuple(f"R{r}" for r in RANKS) + (f"mAP@{top_r}",)


def metrics_row(cmc: np.ndarray, *averages: float) -> list[float]:
    """[R1, R5, R10, R20, then each average (mAP, mINP; or truncated mAP)] in percent (CMC
    read as :func:`cmc_curve` reads it)."""
    curve = cmc_curve(cmc, max(RANKS))
    return [float(curve[r - 1]) for r in RANKS] + [100.0 * a for a in averages]


def cmc_curve(cmc: np.ndarray, ranks: int = 20) -> np.ndarray:
    """The first `ranks` CMC values in percent; past the curve's end (an identity-level CMC
    stops at the number of gallery identities) it reads its last value."""
    cmc = np.asarray(cmc, dtype=float)
    return 100.0 * cmc[np.minimum(np.arange(ranks), len(cmc) - 1)]


def summarise(rows: list[list[float]], names: tuple[str, ...] = METRICS
              ) -> OrderedDict[str, float]:
    """Mean and std over trials of each metric: {"R1": mean, "R1_std": std, ...}."""
    values = np.asarray(rows)
    summary: OrderedDict[str, float] = OrderedDict()
    for j, name in enumerate(names):
        summary[name] = float(values[:, j].mean())
        summary[f"{name}_std"] = float(values[:, j].std())
    return summary


def run_tasks(features: Callable[[str], np.ndarray], items: Sequence[tuple], tasks: list[Task],
              distance: Callable[[str], TrialDistances] | None = None,
              curves: dict[str, np.ndarray] | None = None,
              trial_scores: dict[str, list[tuple]] | None = None,
              ) -> OrderedDict[str, OrderedDict[str, float]]:
    """Score every task over its trials.

    Args:
        features: branch -> (N, d) features of all test items (the same array for a model
            without graph branches).
        items: (img_path, pid, camid, ...) test items, indexed by the tasks.
        distance: None ranks the features as given by −q·gᵀ in float64, as the public scripts
            do (:mod:`cift.evaluation.distances`: one product per branch sliced per trial, each
            trial's ranking equal to that of its own product); or branch -> the distances of
            its trials from its features (after a transfer or with re-ranking), given all the
            trials of the branch's tasks at once so that they can share work (see
            :func:`each_trial` for a distance of one trial's features).
        curves: filled with {task name: mean (20,) CMC in percent} when given.
        trial_scores: filled with {task name: [(cmc, mAP, mINP) of each trial]} when given.
    Returns:
        {task name: {"R1": mean, "R1_std": std, ..., "mINP_std": std}} in percent.
    """
    pids, cams = _labels(items)
    raw: dict[str, tuple[np.ndarray, PairwiseRankings | None]] = {}
    streams: dict[str, Iterator[np.ndarray]] = {}

    def raw_features(branch: str) -> tuple[np.ndarray, PairwiseRankings | None]:
        """The branch's features in float64 and one product for all of its tasks' trials."""
        if branch not in raw:
            x = np.asarray(features(branch), dtype=RAW_DTYPE)
            raw[branch] = x, PairwiseRankings.shared(x, branch_trials(tasks, branch))
        return raw[branch]

    def scores(task: Task) -> Iterator[tuple]:
        if distance is None:
            x, shared = raw_features(task.branch)
            ranked = trial_rankings(x, task.trials, shared)
        else:
            if task.branch not in streams:  # the branch's tasks' trials, consumed in order
                streams[task.branch] = distance(task.branch)(features(task.branch),
                                                             branch_trials(tasks, task.branch))
            ranked = ((dist, None) for dist in islice(streams[task.branch], len(task.trials)))
        for (q, g), (dist, order) in zip(task.trials, ranked, strict=True):
            yield task.metric(dist, pids[q], pids[g], cams[q], cams[g], order=order)
    return _summarise_tasks(tasks, scores, METRICS, curves, trial_scores)


def branch_trials(tasks: list[Task], branch: str) -> list[Trial]:
    """The trials of every task of `branch`, task after task."""
    return [t for task in tasks if task.branch == branch for t in task.trials]


def each_trial(distance: Distance) -> TrialDistances:
    """The :data:`TrialDistances` that computes `distance` of each trial's (queries, gallery)
    features on its own."""
    def distances(x: np.ndarray, trials: Sequence[Trial]) -> Iterator[np.ndarray]:
        return (distance(x[q], x[g]) for q, g in trials)
    return distances


def run_tasks_top_r(features: Callable[[str], np.ndarray], items: Sequence[tuple],
                    tasks: list[Task], retrieval: Callable[[str], Retrieval], top_r: int,
                    curves: dict[str, np.ndarray] | None = None,
                    trial_scores: dict[str, list[tuple]] | None = None,
                    ) -> OrderedDict[str, OrderedDict[str, float]]:
    """Score every task over its trials from each query's top-`top_r` gallery lists
    (`Task.top_r_metric`): the same CMC as :func:`run_tasks` (ties aside), AP truncated at
    `top_r`, no (Q, G) distance matrix.

    Args:
        features, items, curves, trial_scores: as :func:`run_tasks` (scores: (cmc, mAP@R)).
        retrieval: branch -> (trial queries, trial gallery) -> search of that trial (after the
            branch's transfer, for a CIFT model).
        top_r: ranked gallery images per query, >= 1.
    Returns:
        {task name: {"R1": mean, "R1_std": std, ..., "mAP@<top_r>_std": std}} in percent.
    """
    pids, cams = _labels(items)

    def scores(task: Task) -> Iterator[tuple]:
        if task.top_r_metric is None:
            raise ValueError(f"task {task.name!r} has no ranked-list metric")
        x, retrieve = features(task.branch), retrieval(task.branch)
        for q, g in task.trials:
            yield task.top_r_metric(retrieve(x[q], x[g]), top_r, pids[q], pids[g], cams[q],
                                    cams[g])
    return _summarise_tasks(tasks, scores, metric_names(top_r), curves, trial_scores)


def _labels(items: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Identities and cameras of (img_path, pid, camid, ...) items."""
    return np.asarray([it[1] for it in items]), np.asarray([it[2] for it in items])


def summarise_scores(scores: dict[str, list[tuple]], names: tuple[str, ...] = METRICS,
                     curves: dict[str, np.ndarray] | None = None
                     ) -> OrderedDict[str, OrderedDict[str, float]]:
    """Mean and std over trials of each task's (cmc, averages...) scores, in percent, and its
    mean CMC in `curves` when given: {task: [(cmc, mAP, mINP), ...]} -> {task: {"R1": ...}}."""
    results: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()
    for name, trials in scores.items():
        results[name] = summarise([metrics_row(cmc, *averages) for cmc, *averages in trials],
                                  names)
        if curves is not None:
            curves[name] = np.mean([cmc_curve(cmc) for cmc, *_ in trials], axis=0)
    return results


def _summarise_tasks(tasks: list[Task], scores: Callable[[Task], Iterator[tuple]],
                     names: tuple[str, ...], curves: dict[str, np.ndarray] | None,
                     trial_scores: dict[str, list[tuple]] | None
                     ) -> OrderedDict[str, OrderedDict[str, float]]:
    """Every task's per-trial scores (a progress bar over trials), then their summary."""
    collected: dict[str, list[tuple]] = {}
    bar = progress(desc="protocol", total=sum(len(task.trials) for task in tasks), unit="trial")
    for task in tasks:
        bar.set_description(f"protocol {task.name}")
        collected[task.name] = []
        for score in scores(task):
            collected[task.name].append(score)
            bar.update()
    bar.close()
    if trial_scores is not None:
        trial_scores.update(collected)
    return summarise_scores(collected, names, curves)


def run_sysu_protocol(query_feats: np.ndarray, pool_feats: np.ndarray,
                      query_items: Sequence[tuple], pool_items: Sequence[tuple],
                      modes: Sequence[str] = ("all", "indoor"), shots: Sequence[int] = (1, 10),
                      trials: int = 10, distance: Distance | None = None,
                      cmc_mode: str = "identity",
                      ) -> OrderedDict[str, OrderedDict[str, float]]:
    """The SYSU-MM01 protocol from query (Q, d) and gallery-pool (P, d) features: every
    (mode, shots) setting over `trials` gallery draws, mean and std of each metric (percent);
    ranked by −q·gᵀ of the features as given, or by `distance` (see :func:`run_tasks`)."""
    items = list(query_items) + list(pool_items)
    feats = np.concatenate([query_feats, pool_feats])
    tasks = sysu_tasks(items, len(query_items), modes=modes, shots=shots, trials=trials,
                       cmc_mode=cmc_mode)
    return run_tasks(lambda branch: feats, items, tasks,
                     None if distance is None else lambda branch: each_trial(distance))

"""The SYSU-MM01 protocol over all settings and trials, from extracted features (numpy only)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from .protocols import evaluate_sysu, sample_sysu_gallery

RANKS = (1, 5, 10, 20)
METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


def setting_name(mode: str, shots: int) -> str:
    """'all-single', 'indoor-multi' (10 shots), or 'all-5shot' for other shot counts."""
    kind = {1: "single", 10: "multi"}.get(shots, f"{shots}shot")
    return f"{mode}-{kind}"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length: (N, d) -> (N, d)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_distance(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1 - cos(q_i, g_j): (Q, d), (G, d) -> (Q, G) float32."""
    return 1.0 - l2_normalise(q).astype(np.float32) @ l2_normalise(g).astype(np.float32).T


def metrics_row(cmc: np.ndarray, mAP: float, mINP: float) -> list[float]:
    """[R1, R5, R10, R20, mAP, mINP] in percent.

    The protocol's CMC stops at the number of gallery identities (every valid query has
    matched by then), so a rank past its end reads its last value.
    """
    cmc_at = [float(cmc[min(r, len(cmc)) - 1]) for r in RANKS]
    return [100.0 * v for v in cmc_at] + [100.0 * mAP, 100.0 * mINP]


DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def run_sysu_protocol(query_feats: np.ndarray, pool_feats: np.ndarray,
                      query_items: Sequence[tuple], pool_items: Sequence[tuple],
                      modes: Sequence[str] = ("all", "indoor"), shots: Sequence[int] = (1, 10),
                      trials: int = 10, distance: DistanceFn = cosine_distance,
                      ) -> "OrderedDict[str, OrderedDict[str, float]]":
    """Every (mode, shots) setting over `trials` gallery draws; mean and std of each metric.

    Args:
        query_feats: (Q, d) features of the query images (`query_items` order).
        pool_feats: (P, d) features of the gallery pool (`pool_items` order).
        query_items, pool_items: (img_path, pid, camid, ...) tuples.
        distance: (Q, d), (G, d) -> (Q, G) distance; computed once per setting and trial on the
            sampled gallery (a transfer-based distance may depend on the gallery).
    Returns:
        {setting: {"R1": mean, "R1_std": std, ..., "mINP_std": std}} in percent.
    """
    q_pids = np.asarray([it[1] for it in query_items])
    q_cams = np.asarray([it[2] for it in query_items])
    results: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()
    for mode in modes:
        for n_shots in shots:
            rows = []
            for trial in range(trials):
                idx = np.asarray(sample_sysu_gallery(pool_items, mode=mode, trial=trial,
                                                     shots=n_shots))
                g_pids = np.asarray([pool_items[i][1] for i in idx])
                g_cams = np.asarray([pool_items[i][2] for i in idx])
                dist = distance(query_feats, pool_feats[idx])
                rows.append(metrics_row(*evaluate_sysu(dist, q_pids, g_pids, q_cams, g_cams)))
            rows_arr = np.asarray(rows)
            summary: OrderedDict[str, float] = OrderedDict()
            for j, name in enumerate(METRICS):
                summary[name] = float(rows_arr[:, j].mean())
                summary[f"{name}_std"] = float(rows_arr[:, j].std())
            results[setting_name(mode, n_shots)] = summary
    return results


def protocol_rows(results: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """(label, metrics) for every setting in possibly nested results ("CIFT all-single")."""
    rows = []
    for key, value in results.items():
        if isinstance(value, dict):
            label = prefix + (key,)
            rows += [(" ".join(label), value)] if "R1" in value else protocol_rows(value, label)
    return rows


def format_protocol_table(results: dict, title: str = "") -> str:
    """A plain-text table: one row per setting, 'mean ± std' per metric."""
    from tabulate import tabulate

    rows = [[label] + [f"{m[name]:.2f} ± {m[name + '_std']:.2f}" for name in METRICS]
            for label, m in protocol_rows(results)]
    table = tabulate(rows, headers=["setting", *METRICS], tablefmt="pipe")
    return f"{title}\n{table}" if title else table

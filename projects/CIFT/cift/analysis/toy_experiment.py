r"""The toy experiment of supplementary §1 / Fig. 1: how the quality of the inputs X (Q_X) and of
the affinities A (Q_A) shape the quality of the transferred features Y = A·X (Q_Y).

The supplementary does not say how its triplets are drawn; this is the generator used here (all
numbers are the defaults of :class:`ToySettings`):

1. Labels: ``num_ids`` identities × ``per_id`` samples (8 × 8 = 64, the size of a P = 8, K = 4
   per modality training batch); sample ``i`` has identity ``i // per_id``.
2. Features X: per repetition, identity centres ``c_y`` and per-sample noise ``n_i``, each a
   standard normal vector in ``dim`` = 64 dimensions scaled to unit length;
   ``X_i(α) = α c_{y_i} + (1 - α) n_i``. α = 0 gives noise (Q_X ≈ 0), α → 1 collapses every
   identity on its centre (Q_X ≈ 1 - mean cos between centres ≈ 1).
3. Affinity A: the GFT affinity of the model (supplementary eqs. 9-10; top-k with k = 4 self
   included, row-normalised ``exp(cos / τ)``, τ = 0.4, :func:`cift.modeling.graph.affinity`)
   computed from *key* features ``V_i(β) = β c'_{y_i} + (1 - β) n'_i`` drawn like X but
   independently of it (fresh centres and noise): A knows the identities only as well as β
   lets it, whatever X is.
4. Control: α is set by bisection (``bisection_steps`` halvings of [0, 0.999]) so that the
   measured Q_X of this repetition's X equals the target; β likewise for Q_A, measured on the
   dense affinity (equivalently on cos(V_i, V_j): Q_A depends only on each row's order).
   Q_A(β) is a step function (steps of 1/64), so the reached Q_A can exceed its target by a
   step or two; both reached values are kept.
5. Y = A·X, Q_Y measured (cosine distance, like Q_X).
6. Repeat ``reps`` times with independent draws (numpy ``SeedSequence([seed, rep])``) and
   average.

The upper end 0.999 keeps every V distinct: identical keys would tie at the top-k threshold,
which the graph drops (an empty row).
"""
from __future__ import annotations

import csv
import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..modeling.graph import GraphSettings, affinity
from ..progress import progress
from .topology import (
    affinity_error_rate,
    affinity_pair_order,
    affinity_quality,
    feature_quality,
    grouping_margin,
)

__all__ = [
    "GOOD_Q_Y",
    "ToyResult",
    "ToySettings",
    "calibrate",
    "crossing",
    "run_toy",
    "settings_dict",
    "summarise_observations",
    "write_csv",
]

# Q_Y the supplementary calls "satisfied quality".
GOOD_Q_Y = 0.7
MIX_MAX = 0.999


@dataclass(frozen=True)
class ToySettings:
    """Size of one toy graph and of its affinity (see the module docstring)."""

    num_ids: int = 8
    per_id: int = 8
    dim: int = 64
    # GFT's single temperature: supplementary eq. 10 gives no value; tau_hom's default is used
    tau: float = GraphSettings.tau_hom
    k: int = GraphSettings.k
    bisection_steps: int = 30

    @property
    def graph(self) -> GraphSettings:
        """The toy's affinity: GFT with temperature `tau` and `k` entries per row."""
        return GraphSettings(graph="gft", tau_hom=self.tau, k=self.k)

    @property
    def labels(self) -> torch.Tensor:
        """(N,) identity of each sample, N = num_ids * per_id."""
        return torch.arange(self.num_ids).repeat_interleave(self.per_id)


@dataclass
class ToyResult:
    """Per repetition, per target: the reached Q_X, Q_A and the measured Q_Y.

    Attributes:
        qx_targets: (Gx,) and qa_targets: (Ga,) the targets.
        qx: (reps, Gx) reached Q_X; qa: (reps, Ga) reached Q_A; qy: (reps, Gx, Ga) Q_Y.
        qa_pairs: (reps, Ga) the per-pair reading of eq. 3 (per-row AUC) of the same A.
        error_mass: (reps, Ga) share of the top-k affinity mass (self left out) on other
            identities.
    """

    qx_targets: np.ndarray
    qa_targets: np.ndarray
    qx: np.ndarray
    qa: np.ndarray
    qy: np.ndarray
    qa_pairs: np.ndarray
    error_mass: np.ndarray
    settings: ToySettings

    @property
    def qy_mean(self) -> np.ndarray:
        """(Gx, Ga) Q_Y averaged over repetitions."""
        return self.qy.mean(axis=0)


def _unit_normal(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    v = torch.from_numpy(rng.standard_normal(shape))
    return v / v.norm(dim=-1, keepdim=True)


class _Mixture:
    """Features t c_{y_i} + (1 - t) n_i of one draw of centres and noise, and their cosines
    from three precomputed Gram matrices (no d-dimensional work per t)."""

    def __init__(self, rng: np.random.Generator, s: ToySettings):
        self.centres = _unit_normal(rng, s.num_ids, s.dim)[s.labels]
        self.noise = _unit_normal(rng, s.num_ids * s.per_id, s.dim)
        cn = self.centres @ self.noise.T
        self.grams = (self.centres @ self.centres.T, cn + cn.T, self.noise @ self.noise.T)

    def features(self, t: torch.Tensor) -> torch.Tensor:
        """(T,) -> (T, N, d)."""
        t = t[:, None, None]
        return t * self.centres + (1 - t) * self.noise

    def cosines(self, t: torch.Tensor) -> torch.Tensor:
        """(T,) -> (T, N, N) cos between the features."""
        t = t[:, None, None]
        cc, cross, nn = self.grams
        gram = t * t * cc + t * (1 - t) * cross + (1 - t) * (1 - t) * nn
        norms = gram.diagonal(dim1=-2, dim2=-1).clamp_min(1e-24).sqrt()
        return gram / norms[..., :, None] / norms[..., None, :]


def _feature_grouping(features: _Mixture, labels: torch.Tensor, t: torch.Tensor
                      ) -> torch.Tensor:
    """Q_X of the mixture's features at mixing levels `t` (G,): (G,)."""
    return grouping_margin(1 - features.cosines(t), labels).nanmean(-1)


def _affinity_grouping(keys: _Mixture, labels: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Q_A of the affinities built from the mixture's keys at mixing levels `t` (G,): (G,)."""
    return affinity_quality(keys.cosines(t), labels)


def calibrate(quality, targets: torch.Tensor, steps: int, upper: float = MIX_MAX
              ) -> torch.Tensor:
    """Smallest mixing t in [0, upper] (to 2^-steps) whose quality reaches each target.

    Args:
        quality: (T,) mixing values -> (T,) qualities, assumed non-decreasing in t.
        targets: (T,) target qualities.
        steps: bisection halvings.
        upper: upper end of the search.

    Returns:
        torch.Tensor: (T,) float64 mixing values (``upper`` where a target is out of reach).
    """
    targets = torch.as_tensor(targets, dtype=torch.float64)
    lo = torch.zeros_like(targets)
    hi = torch.full_like(targets, upper)
    for _ in range(steps):
        mid = (lo + hi) / 2
        short = quality(mid) < targets
        lo, hi = torch.where(short, mid, lo), torch.where(short, hi, mid)
    return hi


def run_toy(qx_targets, qa_targets, reps: int = 100, seed: int = 0,
            settings: ToySettings = ToySettings(), readings: bool = True) -> ToyResult:
    """Q_Y of Y = A·X for every (Q_X, Q_A) target pair, ``reps`` independent draws.

    Args:
        qx_targets: (Gx,) target Q_X values; qa_targets: (Ga,) target Q_A values in [0, 1].
        reps: repetitions; seed: base seed (repetition r draws from SeedSequence([seed, r])).
        settings: graph size and affinity parameters.
        readings: also measure the per-pair reading of eq. 3 (``qa_pairs``; NaN otherwise).

    Returns:
        ToyResult with (reps, Gx) Q_X, (reps, Ga) Q_A and (reps, Gx, Ga) Q_Y.
    """
    s = settings
    qx_t = torch.as_tensor(np.asarray(qx_targets, dtype=np.float64))
    qa_t = torch.as_tensor(np.asarray(qa_targets, dtype=np.float64))
    labels = s.labels
    no_query = torch.zeros(len(labels), dtype=torch.bool)  # GFT: every node is a gallery node
    qx, qa, qy, qa_pairs, error_mass = [], [], [], [], []
    for rep in progress(range(reps), desc="toy experiment", unit="rep", leave=True):
        rng = np.random.default_rng(np.random.SeedSequence([seed, rep]))
        features, keys = _Mixture(rng, s), _Mixture(rng, s)
        q_x = functools.partial(_feature_grouping, features, labels)
        q_a = functools.partial(_affinity_grouping, keys, labels)

        alpha = calibrate(q_x, qx_t, s.bisection_steps)
        beta = calibrate(q_a, qa_t, s.bisection_steps)
        x = features.features(alpha)                          # (Gx, N, d)
        a = affinity(keys.features(beta), no_query, s.graph)  # (Ga, N, N)
        y = a[None] @ x[:, None]                              # (Gx, Ga, N, d)
        qx.append(q_x(alpha).numpy())
        qa.append(q_a(beta).numpy())
        qy.append(feature_quality(y, labels).numpy())
        if readings:
            qa_pairs.append(affinity_pair_order(keys.cosines(beta), labels).numpy())
        else:
            qa_pairs.append(np.full(len(qa_t), np.nan))
        error_mass.append(affinity_error_rate(a, labels).mass.numpy())
    return ToyResult(np.asarray(qx_targets, dtype=float), np.asarray(qa_targets, dtype=float),
                     np.stack(qx), np.stack(qa), np.stack(qy), np.stack(qa_pairs),
                     np.stack(error_mass), s)


def crossing(xs, ys, level: float = GOOD_Q_Y) -> float:
    """First x where the piecewise-linear curve (xs, ys) reaches ``level`` (NaN if never).

    Args:
        xs: (G,) increasing abscissae; ys: (G,) values.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    above = np.flatnonzero(ys >= level)
    if above.size == 0:
        return math.nan
    i = above[0]
    if i == 0:
        return float(xs[0])
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def summarise_observations(grid: ToyResult, line: ToyResult | None = None,
                           low_qa: float = 0.1, level: float = GOOD_Q_Y) -> dict:
    """The two observations of supplementary §1, measured.

    1. At the Q_A target nearest ``low_qa``: Q_Y at the highest Q_X, and the Q_X from which
       Q_Y reaches ``level``.
    2. For every Q_X target of ``grid`` (``qa_threshold_by_qx``) and of the fine sweep ``line``
       (``line_qa_threshold``): the Q_A from which Q_Y reaches ``level`` (abscissa: the reached
       Q_A means; linear interpolation; NaN if never).
    """
    j = int(np.argmin(np.abs(grid.qa_targets - low_qa)))
    column = grid.qy_mean[:, j]

    def thresholds(result: ToyResult) -> dict[str, float]:
        return {f"{t:.3f}": crossing(result.qa.mean(0), result.qy_mean[i], level)
                for i, t in enumerate(result.qx_targets)}

    out = {
        "low_qa_target": float(grid.qa_targets[j]),
        "low_qa_reached": float(grid.qa[:, j].mean()),
        "low_qa_qy_at_max_qx": float(column[-1]),
        "low_qa_max_qx_reached": float(grid.qx[:, -1].mean()),
        "low_qa_qx_for_good_qy": crossing(grid.qx.mean(0), column, level),
        "qa_threshold_by_qx": thresholds(grid),
    }
    if line is not None:
        out["line_qa_threshold"] = thresholds(line)
    return out


def write_csv(result: ToyResult, path: str | Path) -> None:
    """One row per (Q_X target, Q_A target): targets, reached means, Q_Y mean and std."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["qx_target", "qa_target", "qx_mean", "qa_mean", "qy_mean", "qy_std",
                         "qa_pairs_mean", "error_mass_mean", "reps"])
        qx_mean, qa_mean = result.qx.mean(0), result.qa.mean(0)
        pairs, errors = result.qa_pairs.mean(0), result.error_mass.mean(0)
        qy_mean, qy_std = result.qy.mean(0), result.qy.std(0)
        for i, tx in enumerate(result.qx_targets):
            for j, ta in enumerate(result.qa_targets):
                writer.writerow([f"{tx:.4f}", f"{ta:.4f}", f"{qx_mean[i]:.4f}",
                                 f"{qa_mean[j]:.4f}", f"{qy_mean[i, j]:.4f}",
                                 f"{qy_std[i, j]:.4f}", f"{pairs[j]:.4f}", f"{errors[j]:.4f}",
                                 result.qy.shape[0]])


def settings_dict(settings: ToySettings) -> dict:
    """The settings as plain values (for a summary file)."""
    return asdict(settings)

"""Topology measures on test features: which images, which graph, which rows.

A *probe* is the part of a test set the measures look at: for every evaluation task (SYSU
setting, RegDB / LLCM direction) its first trial's gallery and up to ``max_queries`` of its
queries, evenly spread. Only those images are read, so a probe costs a fraction of an
evaluation. On each task's ``[gallery ; queries]`` graph, with X the L2-normalised features of
the branch serving the task's queries:

- A: the model's test-time affinity (:class:`EvalGraph`: a CIFT model's own graph, keys,
  temperatures and k; the default H2FT graph for a model without one), top-k as used;
- Y = A·X, L2-normalised (what the CIFT evaluator ranks);
- Q_X, Q_Y: query rows against gallery columns (the pairs the ranking compares);
- Q_A: query rows of the *dense* affinity over the columns the graph lets them see, self
  left out (H2FT: the gallery; GFT: the gallery and the other queries);
- error rate: the same rows and columns of the top-k affinity (mass and edge shares).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..branches import branch_features
from ..data.build import VIDataset, build_inference_loader, load_dataset
from ..data.transforms import build_vi_transforms
from ..errors import CiftInputError
from ..evaluation.features import extract_features as model_features
from ..evaluation.tasks import Task, build_tasks
from ..modeling.graph import GraphSettings, affinity, neighbour_mask
from .topology import affinity_error_rate, affinity_quality, feature_quality

__all__ = ["MEASURES", "Probe", "EvalGraph", "build_probe", "extract_features",
           "graph_measures", "probe_measures", "spread", "top_neighbours"]

MEASURES = ("Q_X", "Q_Y", "Q_A", "error_mass", "error_edges")


@dataclass(frozen=True)
class EvalGraph:
    """The test-time graph of one branch: its keys v(x) and the model's graph settings (the
    default H2FT graph for a model without one)."""

    keys: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    settings: GraphSettings = GraphSettings()

    @classmethod
    def of(cls, model, branch: str) -> EvalGraph:
        """A CIFT model's graph for `branch`; the default H2FT graph for any other model."""
        module = getattr(model, "module", model)  # unwrap DistributedDataParallel
        if not hasattr(module, "transfer_test_features"):
            return cls()
        projection = module.projections[branch]

        def keys(x: torch.Tensor) -> torch.Tensor:  # features may sit on another device
            return projection(x.to(module.device)).to(x.device)

        return cls(keys=keys, settings=module.graph)

    def affinity(self, x: torch.Tensor, is_query: torch.Tensor, dense: bool = False
                 ) -> torch.Tensor:
        """(N, d) features -> (N, N) affinity; `dense` keeps every allowed entry (no top-k)."""
        settings = replace(self.settings, k=x.shape[0]) if dense else self.settings
        return affinity(self.keys(x), is_query, settings)

    def visible_columns(self, is_query: torch.Tensor) -> torch.Tensor:
        """(N, N) bool: the columns each row may use, itself left out."""
        return neighbour_mask(self.settings.queries(is_query), self_loops=False)


@torch.no_grad()
def graph_measures(gallery: torch.Tensor, queries: torch.Tensor, g_pids, q_pids,
                   graph: EvalGraph = EvalGraph(), device=None) -> OrderedDict[str, float]:
    """Q_X, Q_Y, Q_A and the affinity error rates of one [gallery ; queries] test graph.

    The graph is built densely: a few (G + Q)^2 float32 matrices (about 4 x 75 MB for
    G + Q = 4300, SYSU multi-shot with 500 queries); bound Q with the probe's `max_queries`.

    Args:
        gallery: (G, d) and queries: (Q, d) features (normalised here).
        g_pids: (G,) and q_pids: (Q,) identities.
        graph: the test-time graph.
        device: where to compute (default: that of `gallery`).

    Returns:
        OrderedDict: {"Q_X", "Q_Y", "Q_A", "error_mass", "error_edges"} floats.
    """
    g = F.normalize(torch.as_tensor(gallery).float().to(device), dim=1)
    q = F.normalize(torch.as_tensor(queries).to(g), dim=1)
    n_g = g.shape[0]
    x = torch.cat([g, q])
    is_query = torch.arange(x.shape[0], device=x.device) >= n_g
    g_pids, q_pids = torch.as_tensor(np.asarray(g_pids)), torch.as_tensor(np.asarray(q_pids))
    pids = torch.cat([g_pids, q_pids])
    a = graph.affinity(x, is_query)
    y = F.normalize(a @ x, dim=1)
    columns = graph.visible_columns(is_query)[n_g:]
    errors = affinity_error_rate(a[n_g:], q_pids, pids, allowed=columns)
    return OrderedDict([
        ("Q_X", float(feature_quality(q, q_pids, g, g_pids))),
        ("Q_Y", float(feature_quality(y[n_g:], q_pids, y[:n_g], g_pids))),
        ("Q_A", float(affinity_quality(graph.affinity(x, is_query, dense=True)[n_g:], q_pids,
                                       pids, allowed=columns))),
        ("error_mass", float(errors.mass)),
        ("error_edges", float(errors.edges)),
    ])


@dataclass
class Probe:
    """The images of one test set the measures use.

    Attributes:
        name: the data set (DATASETS.TESTS entry).
        items: (img_path, pid, camid, modality) of the probe images, in loader order.
        tasks: one trial per task, indices into `items`.
        loader: test-transformed batches of `items` in order (dicts with "images").
    """

    name: str
    items: list[tuple]
    tasks: list[Task]
    loader: torch.utils.data.DataLoader


def spread(indices: np.ndarray, count: int | None) -> np.ndarray:
    """At most `count` of `indices`, evenly spread (all of them for None or count >= len)."""
    indices = np.asarray(indices)
    if count is None or count >= len(indices):
        return indices
    return indices[np.unique(np.linspace(0, len(indices) - 1, count).round().astype(int))]


def build_probe(cfg, dataset_name: str, max_queries: int | None = 500,
                queries: dict[str, Sequence[int]] | None = None,
                task_names: Sequence[str] | None = None) -> Probe:
    """The probe of a test set: every task's trial-0 gallery and some of its queries.

    Args:
        cfg: the run's config (test transforms, TEST.* protocol keys, TEST.IMS_PER_BATCH).
        dataset_name: a registered data set.
        max_queries: queries kept per task, evenly spread; None keeps all.
        queries: optional {task name: positions among that task's queries} to keep instead
            (overrides `max_queries` for those tasks).
        task_names: keep only these tasks (default all); an unknown name raises
            CiftInputError listing the known ones.

    Returns:
        Probe.
    """
    data = load_dataset(cfg, dataset_name)
    items = data.query + data.gallery
    all_tasks = build_tasks(cfg, data.protocol, items, len(data.query))
    known = [t.name for t in all_tasks]
    unknown = [n for n in (task_names or ()) if n not in known]
    if unknown:
        raise CiftInputError(f"{dataset_name}: unknown task {unknown[0]!r}; known: {known}")
    chosen = []
    for task in all_tasks:
        if task_names is not None and task.name not in task_names:
            continue
        q, g = task.trials[0]
        if queries is not None and task.name in queries:
            q = np.asarray(q)[np.asarray(queries[task.name], dtype=int)]
        else:
            q = spread(q, max_queries)
        chosen.append((task, np.asarray(q), np.asarray(g)))
    keep = np.unique(np.concatenate([np.concatenate([q, g]) for _, q, g in chosen]))
    position = {int(i): p for p, i in enumerate(keep)}
    tasks = [Task(t.name, t.branch, t.metric,
                  ((np.array([position[int(i)] for i in q], dtype=int),
                    np.array([position[int(i)] for i in g], dtype=int)),))
             for t, q, g in chosen]
    probe_items = [items[i] for i in keep]
    dataset = VIDataset(probe_items, build_vi_transforms(cfg, is_train=False), relabel=False)
    loader = build_inference_loader(dataset, cfg.TEST.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS)
    return Probe(dataset_name, probe_items, tasks, loader)


def extract_features(model, loader, flip_test: bool = False) -> np.ndarray:
    """The model's inference output for every batch of `loader`, in order, as float32 numpy:
    (N, d) (baseline) or (N, 2, d) (CIFT). Eval mode during, the previous mode after."""
    module = getattr(model, "module", model)  # one process: no DDP synchronisation
    return model_features(module, loader, flip=flip_test).numpy()


def probe_measures(features: np.ndarray, probe: Probe,
                   graph_of: Callable[[str], EvalGraph] = lambda branch: EvalGraph(),
                   device=None) -> OrderedDict[str, OrderedDict[str, float]]:
    """Measures of every task of a probe.

    Args:
        features: (N, d) or (N, 2, d) (r2i, i2r) features of `probe.items`.
        probe: the probe.
        graph_of: branch -> test-time graph.
        device: where the graphs are computed (default CPU; a [gallery ; queries] graph holds
            a few (G + Q)^2 matrices).

    Returns:
        {task name: {measure: value}}.
    """
    pids = np.asarray([it[1] for it in probe.items])
    out: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()
    for task in probe.tasks:
        x = branch_features(features, task.branch)
        q, g = task.trials[0]
        out[task.name] = graph_measures(torch.from_numpy(x[g]), torch.from_numpy(x[q]), pids[g],
                                        pids[q], graph_of(task.branch), device)
    return out


@torch.no_grad()
def top_neighbours(gallery: torch.Tensor, queries: torch.Tensor, graph: EvalGraph = EvalGraph(),
                   top: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's `top` strongest affinity neighbours on the [gallery ; queries] test graph.

    Neighbours are ranked by the dense affinity over the columns the query row may use, itself
    left out (H2FT: the gallery); the weights are those of the top-k affinity the model uses
    (0 for a neighbour beyond its k - 1).

    Args:
        gallery: (G, d), queries: (Q, d) features (normalised here).
        graph: the test-time graph; top: neighbours per query.

    Returns:
        tuple: (Q, top) long column indices into [gallery ; queries] and (Q, top) weights.
    """
    g = F.normalize(torch.as_tensor(gallery).float(), dim=1)
    q = F.normalize(torch.as_tensor(queries).to(g), dim=1)
    n_g = g.shape[0]
    x = torch.cat([g, q])
    is_query = torch.arange(x.shape[0], device=x.device) >= n_g
    columns = graph.visible_columns(is_query)[n_g:]
    if top > int(columns.sum(1).min()):
        raise ValueError(f"top={top}: a query sees only {int(columns.sum(1).min())} nodes")
    dense = graph.affinity(x, is_query, dense=True)[n_g:].masked_fill(~columns, -1.0)
    order = dense.topk(top, dim=1).indices
    weights = graph.affinity(x, is_query)[n_g:].gather(1, order)
    return order, weights

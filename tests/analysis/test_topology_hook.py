"""Topology on test features: the probe, the test-time graph, TopologyHook with a fake trainer
and an EventStorage, and tools/visualize_affinity.py on tiny untrained models (CPU)."""

import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fastreid.config import CfgNode
from fastreid.modeling.meta_arch import build_model
from fastreid.utils.events import EventStorage
from PIL import Image

from cift import load_config
from cift.analysis.hooks import TopologyHook, build_topology_hook
from cift.analysis.plots import QUERY, RIGHT, WRONG, GridLayout
from cift.analysis.probe import (
    MEASURES,
    EvalGraph,
    build_probe,
    graph_measures,
    spread,
    top_neighbours,
)
from cift.data.build import load_dataset
from cift.engine.checkpoint import AtomicCheckpointer
from cift.errors import CiftInputError
from cift.evaluation.tasks import build_tasks
from cift.modeling.graph import GraphSettings
from helpers import DEMO as BASELINE
from helpers import DEMO_CIFT as CIFT
from helpers import SETTINGS, load_script
from helpers.runs import TINY as TRAIN_NET_TINY

TINY = [*TRAIN_NET_TINY, "MODEL.HEADS.NUM_CLASSES", "6", "TEST.SYSU.TRIALS", "1",
        "TEST.IMS_PER_BATCH", "64", "SEED", "0"]
MAX_QUERIES = 12


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("FASTREID_DATASETS")
    os.environ["FASTREID_DATASETS"] = str(root)
    yield root
    if old is None:
        del os.environ["FASTREID_DATASETS"]
    else:
        os.environ["FASTREID_DATASETS"] = old


def config(path, *opts):
    return load_config(str(path), [*TINY, *opts])


@pytest.fixture(scope="module")
def probe(datasets_root):
    return build_probe(config(CIFT), "SyntheticVI", max_queries=MAX_QUERIES)


@pytest.fixture(scope="module")
def cift_model():
    torch.manual_seed(0)
    return build_model(config(CIFT))


def test_spread_keeps_evenly_spaced_indices():
    assert spread(np.arange(10), 4).tolist() == [0, 3, 6, 9]
    assert spread(np.arange(3), 5).tolist() == [0, 1, 2]
    assert spread(np.arange(3), None).tolist() == [0, 1, 2]


def test_probe_holds_each_tasks_first_gallery_and_some_queries(probe, datasets_root):
    cfg = config(CIFT)
    data = load_dataset(cfg, "SyntheticVI")
    items = data.query + data.gallery
    full = {t.name: t for t in build_tasks(cfg, data.protocol, items, len(data.query))}
    assert [t.name for t in probe.tasks] == list(SETTINGS)
    paths = [it[0] for it in probe.items]
    assert len(set(paths)) == len(paths) == len(probe.loader.dataset)
    for task in probe.tasks:
        (q, g), = task.trials
        full_q, full_g = full[task.name].trials[0]
        assert [probe.items[i] for i in g] == [items[i] for i in full_g]
        assert len(q) == MAX_QUERIES < len(full_q)
        assert [probe.items[i] for i in q] == [items[i] for i in spread(full_q, MAX_QUERIES)]
        assert task.branch == "i2r"  # SYSU queries are infrared


def test_probe_query_choice_and_unknown_task(datasets_root):
    cfg = config(CIFT)
    chosen = build_probe(cfg, "SyntheticVI", queries={"all-single": [0, 5]},
                         task_names=["all-single"])
    (q, _), = chosen.tasks[0].trials
    assert [t.name for t in chosen.tasks] == ["all-single"] and len(q) == 2
    with pytest.raises(CiftInputError, match="unknown task 'nope'"):
        build_probe(cfg, "SyntheticVI", task_names=["nope"])


def test_eval_graph_transfer_is_the_models(cift_model):
    model = cift_model.eval()
    g = torch.Generator().manual_seed(0)
    gallery, queries = torch.randn(10, 512, generator=g), torch.randn(4, 512, generator=g)
    graph = EvalGraph.of(model, "i2r")
    assert graph.settings == model.graph == GraphSettings("h2ft", 0.4, 0.2, 4)
    x = torch.nn.functional.normalize(torch.cat([gallery, queries]), dim=1)
    is_query = torch.arange(14) >= 10
    y = torch.nn.functional.normalize(graph.affinity(x, is_query) @ x, dim=1)
    g_out, q_out = model.transfer_test_features(gallery, queries, "i2r")
    torch.testing.assert_close(y, torch.cat([g_out, q_out]), rtol=1e-5, atol=1e-5)
    gft = EvalGraph.of(build_model(config(CIFT, "MODEL.CIFT.GRAPH", "gft")), "r2i")
    assert gft.settings.graph == "gft" and gft.visible_columns(is_query)[10:, 11:].any()
    assert EvalGraph.of(build_model(config(BASELINE)), "i2r") == EvalGraph()


def test_graph_measures_on_separated_and_random_features():
    # 3 identities on orthogonal points, 3 gallery images and 1 query each
    e = torch.eye(3)
    pids = [0, 1, 2]
    gallery = e[[0, 0, 0, 1, 1, 1, 2, 2, 2]] + 0.01 * torch.randn(9, 3)
    measures = graph_measures(gallery, e, [0, 0, 0, 1, 1, 1, 2, 2, 2], pids)
    assert list(measures) == list(MEASURES)
    assert measures["Q_X"] == pytest.approx(1.0, abs=0.03)
    assert measures["Q_Y"] == pytest.approx(1.0, abs=0.03)
    assert measures["Q_A"] == 1.0
    assert measures["error_mass"] == 0.0 and measures["error_edges"] == 0.0
    # queries on another identity's point: positives 1 away, negatives 0 and 1 -> GR -0.5
    wrong = graph_measures(gallery, e[[1, 2, 0]], [0, 0, 0, 1, 1, 1, 2, 2, 2], pids)
    assert wrong["Q_A"] == 0.0 and wrong["error_edges"] == 1.0
    assert wrong["Q_X"] == pytest.approx(-0.5, abs=0.03)
    order, weights = top_neighbours(gallery, e, top=3)
    assert (order // 3 == torch.tensor(pids)[:, None]).all()  # gallery i has identity i // 3
    assert (weights > 0).all() and (weights.sum(1) < 1).all()  # self keeps the rest
    with pytest.raises(ValueError, match="sees only"):
        top_neighbours(gallery[:2], e, top=3)


def fake_trainer(epoch, max_epoch):
    return SimpleNamespace(epoch=epoch, max_epoch=max_epoch, storage=EventStorage(0))


def test_hook_puts_scalars_after_each_period(probe, cift_model, caplog):
    cift_model.train()
    hook = TopologyHook(cift_model, [probe], eval_period=2)
    hook.trainer = trainer = fake_trainer(0, 4)
    with trainer.storage:
        hook.after_epoch()  # epoch 1 of 4: not a period
        assert not trainer.storage.histories()
        trainer.epoch = 1
        with caplog.at_level(logging.INFO, logger="cift.analysis.hooks"):
            hook.after_epoch()
        histories = trainer.storage.histories()
        names = {f"topology/SyntheticVI/{s}/{m}" for s in SETTINGS for m in MEASURES}
        assert set(histories) == names
        for name, history in histories.items():
            value = history.latest()
            assert np.isfinite(value)
            if name.endswith(("Q_A", "error_mass", "error_edges")):
                assert 0.0 <= value <= 1.0
            else:
                assert -2.0 <= value <= 2.0
        assert hook.last == {k: h.latest() for k, h in histories.items()}
        assert "Topology of SyntheticVI" in caplog.text and "error_edges" in caplog.text
        assert cift_model.training  # the previous mode is restored
        trainer.epoch = 3
        hook.after_epoch()
        hook.after_train()  # epoch 4 was a period: measured once, not twice
        counts = {len(h.values()) for h in trainer.storage.histories().values()}
        assert counts == {2}


def test_hook_on_a_baseline_measures_after_training(probe):
    torch.manual_seed(0)
    model = build_model(config(BASELINE))
    hook = TopologyHook(model, [probe], eval_period=0, prefix="topo")
    hook.trainer = trainer = fake_trainer(0, 3)
    with trainer.storage:
        hook.after_epoch()
        trainer.epoch = 2
        hook.after_train()
        assert "topo/SyntheticVI/all-single/Q_Y" in trainer.storage.histories()
        trainer.epoch = 0  # an interrupted training measures nothing
        hook.after_train()
        assert {len(h.values()) for h in trainer.storage.histories().values()} == {1}


def test_build_topology_hook_follows_the_config(datasets_root, cift_model):
    cfg = config(CIFT)
    assert build_topology_hook(cfg, cift_model) is None  # no TEST.TOPOLOGY keys
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TEST.TOPOLOGY = CfgNode({"ENABLED": False, "MAX_QUERIES": 5})
    assert build_topology_hook(cfg, cift_model) is None
    cfg.TEST.TOPOLOGY.ENABLED = True
    cfg.TEST.EVAL_PERIOD = 3
    hook = build_topology_hook(cfg, cift_model)
    assert hook.period == 3 and [p.name for p in hook.probes] == ["SyntheticVI"]
    assert [t.name for t in hook.probes[0].tasks] == list(SETTINGS)
    assert all(len(t.trials[0][0]) == 5 for t in hook.probes[0].tasks)
    cfg.TEST.TOPOLOGY.TASKS = ("indoor-single",)
    cfg.TEST.TOPOLOGY.MAX_QUERIES = 0  # all queries
    (probe,) = build_topology_hook(cfg, cift_model).probes
    assert [t.name for t in probe.tasks] == ["indoor-single"]
    data = load_dataset(cfg, "SyntheticVI")
    assert len(probe.tasks[0].trials[0][0]) == len(data.query)  # every (infrared) query


def load_tool():
    return load_script("projects/CIFT/tools/visualize_affinity.py")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, cift_model):
    out = tmp_path_factory.mktemp("weights")
    AtomicCheckpointer(cift_model, str(out)).save("cift")
    torch.manual_seed(1)
    AtomicCheckpointer(build_model(config(BASELINE)), str(out)).save("baseline")
    return out


def test_visualize_affinity_side_by_side(checkpoints, datasets_root, tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / "grid.png"
    code = tool.main(["--out", str(out), "--queries", "0,3,7", "--task", "indoor-multi",
                      "--model", "CIFT", str(CIFT), str(checkpoints / "cift.pth"),
                      "--model", "baseline", str(BASELINE), str(checkpoints / "baseline.pth"),
                      *TINY])
    assert code == 0
    layout = GridLayout(rows=3, groups=2, tiles=4, header=True)
    with Image.open(out) as image:
        image = image.convert("RGB")
        assert image.size == layout.size
        frames = [image.getpixel(layout.frame_box(r, g, t)[:2])
                  for r in range(3) for g in range(2) for t in range(4)]
    assert frames.count(QUERY) == 6 and frames.count(RIGHT) + frames.count(WRONG) == 18
    printed = capsys.readouterr().out
    assert "top-3 neighbours of the right identity" in printed and "3 queries" in printed
    right = sum(int(line.split(": ")[1].split("/")[0]) for line in printed.splitlines()
                if "neighbours of the right identity" in line)
    assert right == frames.count(RIGHT)


def test_visualize_affinity_random_queries_and_errors(checkpoints, datasets_root, tmp_path,
                                                      capsys):
    tool = load_tool()
    weights = str(checkpoints / "cift.pth")
    out = tmp_path / "one.png"
    assert tool.main(["--out", str(out), "--random", "2", "--top", "2",
                      "--model", "CIFT", str(CIFT), weights, *TINY]) == 0
    with Image.open(out) as image:
        assert image.size == GridLayout(rows=2, groups=1, tiles=3, header=True).size
    assert tool.main(["--out", str(out), "--task", "nope",
                      "--model", "CIFT", str(CIFT), weights, *TINY]) == 2
    assert "known: ['all-single'" in capsys.readouterr().err
    assert tool.main(["--out", str(out), "--queries", "999",
                      "--model", "CIFT", str(CIFT), weights, *TINY]) == 2
    assert tool.main(["--out", str(out), "--model", "CIFT", str(CIFT),
                      str(tmp_path / "missing.pth"), *TINY]) == 2
    assert "weights file not found" in capsys.readouterr().err

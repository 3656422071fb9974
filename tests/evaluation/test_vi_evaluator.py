"""The fastreid evaluator and the protocol runs on hand-made features."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

from cift import load_config
from cift.evaluation import VIEvaluator, build_tasks, format_protocol_table, run_sysu_protocol
from cift.evaluation.distances import l2_normalise
from helpers import DEMO, SETTINGS
from helpers.evaluator import feed, identity_features, items


def test_perfect_features_give_perfect_metrics():
    query, pool = items()
    results = run_sysu_protocol(identity_features(query), identity_features(pool, 0.01),
                                query, pool, trials=3)
    assert tuple(results) == SETTINGS
    for metrics in results.values():
        for name in ("R1", "R5", "R10", "R20", "mAP", "mINP"):
            assert metrics[name] == pytest.approx(100.0)
            assert metrics[name + "_std"] == pytest.approx(0.0)


def test_wrong_features_give_rank_one_zero():
    query, pool = items()
    shifted = [(path, pid % 3 + 1, cam) for path, pid, cam, _ in pool]  # every id relabelled
    results = run_sysu_protocol(identity_features(query), identity_features(shifted), query,
                                pool, trials=2)
    assert results["all-single"]["R1"] == 0.0


def evaluator(*opts):
    cfg = load_config(DEMO,
                      ["TEST.SYSU.TRIALS", "2", *opts])
    query, pool = items()
    test_items = query + pool
    tasks = build_tasks(cfg, "sysu", test_items, len(query))
    return VIEvaluator(cfg, test_items, tasks), query, pool


def test_evaluator_matches_protocol_in_any_batch_order():
    ev, query, pool = evaluator()
    all_items = query + pool
    feats = identity_features(all_items, noise=0.8, seed=1)
    feed(ev, all_items, feats, np.random.default_rng(0).permutation(len(all_items)))
    got = ev.evaluate()
    # the evaluator ranks L2-normalised features; the protocol ranks the features as given
    unit = l2_normalise(feats)
    want = run_sysu_protocol(unit[:len(query)], unit[len(query):], query, pool, trials=2)
    for setting in SETTINGS:
        assert got[setting] == pytest.approx(want[setting])
    assert got["metric"] == want["all-single"]["mAP"]


def test_evaluator_refuses_missing_features():
    ev, query, _ = evaluator()
    ev.process({"img_paths": [query[0][0]]}, torch.zeros(1, 8))
    with pytest.raises(RuntimeError, match="no feature"):
        ev.evaluate()


def test_unknown_main_metric_is_named():
    ev, query, pool = evaluator("TEST.MAIN_METRIC", "all-single/R7")
    all_items = query + pool
    feed(ev, all_items, identity_features(all_items), np.arange(len(all_items)))
    with pytest.raises(KeyError, match="R7"):
        ev.evaluate()


def test_table_has_one_row_per_setting():
    query, pool = items()
    results = run_sysu_protocol(identity_features(query), identity_features(pool), query, pool,
                                trials=1)
    results = OrderedDict(results, metric=1.0)
    table = format_protocol_table(results, title="T")
    assert table.splitlines()[0] == "T"
    assert sum(line.startswith("| all") or line.startswith("| indoor")
               for line in table.splitlines()) == 4
    assert "100.00 ± 0.00" in table

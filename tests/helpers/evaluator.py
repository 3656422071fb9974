"""A fake SYSU-MM01 test set fed to the evaluator: items, features that identify (or nearly
identify) each identity, the evaluator's batched input, one evaluation of the demo config, and
random SYSU-MM01 distance matrices for the protocol functions."""
from __future__ import annotations

import numpy as np
import torch

from cift import load_config
from cift.evaluation import VIEvaluator, build_tasks
from cift.evaluation.galleries import SYSU_CAMERAS, SYSU_QUERY_CAMERAS
from helpers import DEMO


def items(pids=(1, 2, 3), per_cam=10):
    """Query (cams 3, 6) and gallery pool (cams 1, 2, 4, 5) items of a fake SYSU test set."""
    query = [(f"q/cam{c}/{p:04d}/{n:04d}.jpg", p, c, "infrared")
             for p in pids for c in (3, 6) for n in range(2)]
    pool = [(f"g/cam{c}/{p:04d}/{n:04d}.jpg", p, c, "visible")
            for p in pids for c in (1, 2, 4, 5) for n in range(per_cam)]
    return query, pool


def identity_features(item_list, noise=0.0, seed=0):
    """One-hot features of each item's identity plus Gaussian noise of scale `noise`."""
    rng = np.random.default_rng(seed)
    feats = np.stack([np.eye(8)[it[1]] for it in item_list]).astype(np.float32)
    return feats + noise * rng.standard_normal(feats.shape).astype(np.float32)


def feed(ev, item_list, feats, order):
    """Give the evaluator `feats` in batches of 7, in the order `order`."""
    for start in range(0, len(order), 7):
        idx = order[start:start + 7]
        ev.process({"img_paths": [item_list[i][0] for i in idx]}, torch.from_numpy(feats[idx]))


def cfg(*opts):
    """The demo config with 3 SYSU trials and `opts`."""
    return load_config(DEMO, ["TEST.SYSU.TRIALS", "3", *opts])


def evaluate(features, *opts, transfer=None):
    """The evaluator's results on 7 identities, features from `features(items)`."""
    config = cfg(*opts)
    query, pool = items(pids=tuple(range(1, 8)), per_cam=12)
    test_items = query + pool
    ev = VIEvaluator(config, test_items, build_tasks(config, "sysu", test_items, len(query)),
                     transfer=transfer)
    feed(ev, test_items, features(test_items), np.arange(len(test_items)))
    return ev.evaluate()


def noisy(test_items):
    """Identity features under heavy noise: imperfect metrics."""
    return identity_features(test_items, noise=0.9, seed=3)


def sysu_case(num_q, num_ids, shots, seed, absent_ids=3):
    """Infrared queries against a gallery of `shots` images per (identity, visible camera);
    `absent_ids` query identities have no gallery image (skipped)."""
    rng = np.random.default_rng(seed)
    g_pids = np.repeat(np.arange(num_ids), 4 * shots)
    g_cams = np.tile(np.repeat(SYSU_CAMERAS["all"], shots), num_ids)
    q_pids = rng.integers(0, num_ids + absent_ids, num_q)
    q_cams = rng.choice(SYSU_QUERY_CAMERAS, num_q)
    return rng.random((num_q, g_pids.size)), q_pids, g_pids, q_cams, g_cams

"""A features file written by a plain PyTorch loop that never imports cift, for a generated
SYSU-MM01 tree, scored by tools/evaluate_features.py: the whole pipeline (features -> gallery
draws -> distances -> metrics) against the public VI-ReID test loop restated below, number for
number and tie for tie; and the test-time transfer against a direct computation.

The restatement follows what the public code (Ye et al., Cross-Modal-Re-ID-baseline, also AGW
and DEEN: ``process_query_sysu``, ``process_gallery_sysu``, ``test.py``'s trial loop and
``eval_metrics.eval_sysu``) does, in our own words: queries are the infrared images of the test
ids (ids sorted, cameras 3 then 6, file names sorted); trial t seeds Python's generator with t
and picks one image per (id, visible camera) folder; both feature sets sit in float64 arrays and
each trial is scored from −(query · galleryᵀ) by an argsort per row, dropping camera-2 images for
camera-3 queries, a CMC over distinct gallery identities, AP and INP over the kept images; the
ten trials are averaged by summing and dividing by ten.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cift.evaluation.features_file import read_features_file
from helpers import ROOT, SETTINGS, load_script

tool = load_script("projects/CIFT/tools/evaluate_features.py", "evaluate_features_public")
WRITER = ROOT / "tests" / "helpers" / "plain_features.py"
SHOTS = {"single": 1, "multi": 10}
CAMERAS = {"all": ("cam1", "cam2", "cam4", "cam5"), "indoor": ("cam1", "cam2")}


def write_plain_file(data_dir: Path, out: Path, *flags: str) -> Path:
    """The plain loop's file, written in a fresh interpreter without cift on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(WRITER), str(data_dir), str(out), *flags],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


# ---------------------------------------------------------------- the public loop, restated


def public_queries(data_dir: Path) -> list[str]:
    ids = sorted(f"{int(t):04d}" for t in (data_dir / "exp" / "test_id.txt").read_text()
                 .strip().split(","))
    files = []
    for pid in ids:
        for cam in ("cam3", "cam6"):
            folder = data_dir / cam / pid
            if folder.is_dir():
                files += sorted(f"{folder}/{name}" for name in os.listdir(folder))
    return files


def public_gallery(data_dir: Path, mode: str, trial: int, shots: int) -> list[str]:
    """One trial's gallery: the seeded pick per (id, camera) folder (multi-shot: the seeded
    sample of ten that the forks with a multi-shot setting draw)."""
    ids = sorted(f"{int(t):04d}" for t in (data_dir / "exp" / "test_id.txt").read_text()
                 .strip().split(","))
    state = random.getstate()
    random.seed(trial)
    files = []
    for pid in ids:
        for cam in CAMERAS[mode]:
            folder = data_dir / cam / pid
            if folder.is_dir():
                names = sorted(f"{folder}/{name}" for name in os.listdir(folder))
                files += [random.choice(names)] if shots == 1 else random.sample(names, shots)
    random.setstate(state)
    return files


def label_of(path: str) -> tuple[int, int]:
    """(pid, camera) read from the path's fixed positions, as the public loader does."""
    return int(path[-13:-9]), int(path[-15])


def labels(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    pids, cams = zip(*map(label_of, paths), strict=True)
    return np.asarray(pids), np.asarray(cams)


def public_eval_sysu(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20):
    """eval_sysu's computation, step by step."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    ranking = np.argsort(distmat, axis=1)
    ranked_pids = g_pids[ranking]
    hit = (ranked_pids == q_pids[:, None]).astype(np.int32)
    identity_curves, aps, inps, valid = [], [], [], 0.0
    for i in range(num_q):
        kept = ~((q_cams[i] == 3) & (g_cams[ranking[i]] == 2))
        seen = ranked_pids[i][kept]
        first_places = np.unique(seen, return_index=True)[1]
        distinct = np.asarray([seen[p] for p in sorted(first_places)])
        identity_curves.append((distinct == q_pids[i]).astype(np.int32).cumsum()[:max_rank])
        row = hit[i][kept]
        if not row.any():
            continue
        running = row.cumsum()
        last = np.max(np.where(row == 1))
        inps.append(running[last] / (last + 1.0))
        valid += 1.0
        precision = np.asarray([c / (j + 1.0) for j, c in enumerate(running)]) * row
        aps.append(precision.sum() / row.sum())
    cmc = np.asarray(identity_curves).astype(np.float32).sum(0) / valid
    return cmc, np.mean(aps), np.mean(inps)


def public_loop(data_dir: Path, saved, mode: str, shots: int, trials: int = 10,
                features=None) -> list[tuple]:
    """Per trial (cmc, mAP, mINP): features looked up by path, float64 arrays, −q·gᵀ.
    `features(q, g)` may post-process each trial's (query, gallery) arrays first."""
    row_of = {path: i for i, path in enumerate(saved.paths)}
    feats = saved.features["feats"]

    def array(paths):
        out = np.zeros((len(paths), feats.shape[1]))  # float64, as the public arrays
        for i, path in enumerate(paths):
            out[i] = feats[row_of[os.path.relpath(path, data_dir)]]
        return out

    query = public_queries(data_dir)
    q_feat, (q_pids, q_cams) = array(query), labels(query)
    scores = []
    for trial in range(trials):
        gallery = public_gallery(data_dir, mode, trial, shots)
        g_feat = array(gallery)
        g_pids, g_cams = labels(gallery)
        q, g = (q_feat, g_feat) if features is None else features(q_feat, g_feat)
        distmat = np.matmul(q, np.transpose(g))
        scores.append(public_eval_sysu(-distmat, q_pids, g_pids, q_cams, g_cams))
    return scores


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def data_dir(datasets_root) -> Path:
    return datasets_root / "SyntheticVI"


def scorer(path: Path, *flags: str):
    """The tool's scorer of one file (its features, items and tasks), as its command builds it."""
    args = tool.argument_parser().parse_args([str(path), *flags])
    saved = read_features_file(path)
    return saved, tool.Scorer(saved, args, tool.config(args, saved, tool.flag_values(args)))


@pytest.mark.parametrize("flags, container", [((), ".npz"), (("--coarse",), ".pt"),
                                              (("--coarse",), ".safetensors")])
def test_every_trial_is_the_public_loops_number_for_number(data_dir, tmp_path, flags,
                                                           container):
    path = write_plain_file(data_dir, tmp_path / f"features{container}", *flags)
    saved, score = scorer(path)
    if flags:  # coarse features: many exact ties, whose order the argsort of each row decides
        ranks = -saved.features["feats"][:5].astype(np.float64) @ saved.features["feats"].T
        assert len(np.unique(ranks)) < ranks.size / 2
    got: dict[str, list] = {}
    score.score(None, None, got)
    assert list(got) == list(SETTINGS)
    for setting in SETTINGS:
        mode, kind = setting.split("-")
        want = public_loop(data_dir, saved, mode, SHOTS[kind])
        for (cmc, m_ap, m_inp), (w_cmc, w_ap, w_inp) in zip(got[setting], want, strict=True):
            assert cmc.dtype == w_cmc.dtype and np.array_equal(cmc, w_cmc)
            assert (m_ap, m_inp) == (w_ap, w_inp)


def test_the_command_prints_and_writes_the_public_averages(data_dir, tmp_path, datasets_root,
                                                           capsys):
    path = write_plain_file(data_dir, tmp_path / "features.npz")
    saved = read_features_file(path)
    out = tmp_path / "out"
    assert tool.run([str(path), "--out", str(out), "--data-root", str(datasets_root)]) == 0
    printed = capsys.readouterr().out
    assert "checked against the data set's test split" in printed
    results = json.loads((out / "protocol_results.json").read_text())["SyntheticVI"]["raw"]
    for setting in SETTINGS:
        mode, kind = setting.split("-")
        trials = public_loop(data_dir, saved, mode, SHOTS[kind])
        # the public averaging: the CMC summed in float32 (so to float32 precision), AP and INP
        # in float64; every trial's own numbers are equal to the bit (test above)
        cmc = sum(t[0] for t in trials) / 10
        assert results[setting]["R1"] == pytest.approx(100 * cmc[0], rel=1e-6)
        assert results[setting]["R5"] == pytest.approx(100 * cmc[min(4, len(cmc) - 1)],
                                                       rel=1e-6)
        assert results[setting]["mAP"] == pytest.approx(100 * sum(t[1] for t in trials) / 10,
                                                        rel=1e-12)
        assert results[setting]["mINP"] == pytest.approx(100 * sum(t[2] for t in trials) / 10,
                                                         rel=1e-12)
    assert (out / "cmc_SyntheticVI.png").is_file()


def direct_transfer(q: np.ndarray, g: np.ndarray, k=4, tau_hom=0.4, tau_het=0.2):
    """H2FT on the [gallery ; queries] graph, one row at a time in float64: a gallery row sees the
    gallery, a query row the gallery and itself; exp(cos / tau) kept above the row's (k+1)-th
    largest, normalised; Y = A X; rows L2-normalised before and after."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    q, g = unit(q), unit(g)

    def row(sims, values, tau):
        weights = np.exp(np.asarray(sims) / tau)
        if len(weights) > k:
            weights = np.where(weights > np.sort(weights)[::-1][k], weights, 0.0)
        return (weights / weights.sum()) @ values

    g_out = np.stack([row(g @ x, g, tau_hom) for x in g])
    q_out = np.stack([row(np.append(g @ x, x @ x), np.vstack([g, x]), tau_het) for x in q])
    return unit(q_out).astype(np.float32), unit(g_out).astype(np.float32)


def test_the_transfer_changes_the_plain_files_numbers_and_matches_a_direct_computation(
        data_dir, tmp_path):
    path = write_plain_file(data_dir, tmp_path / "features.npz")
    out = tmp_path / "out"
    assert tool.run([str(path), "--transfer", "--trials", "1", "--settings", "all-single",
                     "--out", str(out)]) == 0
    results = json.loads((out / "protocol_results.json").read_text())["SyntheticVI"]
    assert results["transfer"] != results["raw"]
    saved = read_features_file(path)
    (cmc, m_ap, m_inp), = public_loop(data_dir, saved, "all", 1, trials=1,
                                      features=direct_transfer)
    got = results["transfer"]["all-single"]
    assert got["R1"] == pytest.approx(100 * cmc[0], abs=1e-9)
    assert got["mAP"] == pytest.approx(100 * m_ap, abs=1e-9)
    assert got["mINP"] == pytest.approx(100 * m_inp, abs=1e-9)

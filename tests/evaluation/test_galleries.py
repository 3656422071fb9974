"""The per-trial gallery draws (cift.evaluation.galleries): SYSU-MM01 and LLCM against the
reference draw, their properties and errors, the cameras of each data set, and the direction
conventions of the LLCM reference test script."""

import random

import numpy as np
import pytest

from cift.evaluation.galleries import (
    LLCM_CAMERAS,
    SYSU_CAMERAS,
    SYSU_QUERY_CAMERAS,
    sample_llcm_gallery,
    sample_sysu_gallery,
)
from cift.evaluation.metrics import evaluate_llcm


def reference_draw(pool, cameras, trial):
    """The reference draw: global random.seed(trial), identity-major, camera-minor."""
    state = random.getstate()
    random.seed(trial)
    drawn = []
    for pid in sorted({item[1] for item in pool}):
        for cam in cameras:
            files = sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam))
            if files:
                drawn.append(random.choice(files))
    random.setstate(state)
    return drawn


# ---------------------------------------------------------------- sample_sysu_gallery


def _sysu_pool(seed=0, pids=(12, 3, 40, 7), min_images=10):
    """Items (path, pid, camid, modality) of a SYSU-like tree; some (pid, cam) folders absent."""
    rng = random.Random(seed)
    pool = []
    for pid in pids:
        for cam in range(1, 7):
            if rng.random() < 0.2:
                continue
            for n in rng.sample(range(1, 80), rng.randint(min_images, min_images + 8)):
                pool.append((f"x/cam{cam}/{pid:04d}/{n:04d}.jpg", pid, cam, cam not in (3, 6)))
    rng.shuffle(pool)
    return pool


@pytest.mark.parametrize("mode", ["all", "indoor"])
@pytest.mark.parametrize("trial", [0, 1, 7])
def test_single_shot_matches_reference_draw(mode, trial):
    pool = _sysu_pool()
    drawn = [pool[i][0] for i in sample_sysu_gallery(pool, mode=mode, trial=trial)]
    assert drawn == reference_draw(pool, SYSU_CAMERAS[mode], trial)


def test_draw_is_deterministic_per_trial_and_differs_between_trials():
    pool = _sysu_pool()
    assert sample_sysu_gallery(pool, trial=3) == sample_sysu_gallery(pool, trial=3)
    assert sample_sysu_gallery(pool, trial=3) != sample_sysu_gallery(pool, trial=4)


@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_draw_uses_the_mode_cameras_once_per_identity_camera(mode):
    pool = _sysu_pool()
    drawn = [pool[i] for i in sample_sysu_gallery(pool, mode=mode)]
    pairs = [(pid, cam) for _, pid, cam, _ in drawn]
    present = {(pid, cam) for _, pid, cam, _ in pool if cam in SYSU_CAMERAS[mode]}
    assert sorted(pairs) == pairs and set(pairs) == present and len(pairs) == len(present)
    assert {cam for _, cam in pairs} <= set(SYSU_CAMERAS[mode])


def test_multi_shot_draws_ten_distinct_images_per_identity_camera():
    pool = _sysu_pool()
    drawn = [pool[i] for i in sample_sysu_gallery(pool, trial=2, shots=10)]
    per_pair = {}
    for path, pid, cam, _ in drawn:
        assert path.split("/")[-3:-1] == [f"cam{cam}", f"{pid:04d}"]
        per_pair.setdefault((pid, cam), []).append(path)
    assert all(len(paths) == len(set(paths)) == 10 for paths in per_pair.values())
    rng = random.Random(2)
    want = []
    for pid, cam in sorted(per_pair):
        want += rng.sample(sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam)), 10)
    assert [path for path, *_ in drawn] == want


def assert_pool_order_does_not_change_the_draw(sample, pool):
    """The same paths drawn, single- and multi-shot, whatever the order of the pool."""
    shuffled = list(pool)
    random.Random(99).shuffle(shuffled)
    for shots in (1, 10):
        first = [pool[i][0] for i in sample(pool, trial=5, shots=shots)]
        second = [shuffled[i][0] for i in sample(shuffled, trial=5, shots=shots)]
        assert first == second


def test_pool_order_does_not_change_the_draw():
    assert_pool_order_does_not_change_the_draw(sample_sysu_gallery, _sysu_pool())


def test_global_random_state_is_untouched():
    random.seed(1234)
    state = random.getstate()
    sample_sysu_gallery(_sysu_pool(), trial=0)
    sample_sysu_gallery(_sysu_pool(), trial=1, shots=10)
    assert random.getstate() == state


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "outdoor"}, "unknown SYSU-MM01 mode"),
    ({"shots": 0}, "shots"),
    ({"shots": -1}, "shots"),
    ({"shots": 30}, "fewer than shots=30"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_sysu_gallery(_sysu_pool(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"shots": 2.0}, {"shots": True}, {"trial": "0"}])
def test_arguments_of_the_wrong_type_raise(kwargs):
    with pytest.raises(TypeError):
        sample_sysu_gallery(_sysu_pool(), **kwargs)


def test_sysu_camera_constants():
    assert SYSU_CAMERAS == {"all": (1, 2, 4, 5), "indoor": (1, 2)}
    assert SYSU_QUERY_CAMERAS == (3, 6)


# ---------------------------------------------------------------- sample_llcm_gallery

TEST_DIRS = {"visible": "test_vis", "infrared": "test_nir"}


def _llcm_pool(modality, seed=0, pids=(12, 3, 40, 7), cameras=range(1, 10), min_images=10):
    """Items (path, pid, camid, modality) of an LLCM-like test tree; some folders absent."""
    rng = random.Random(seed)
    pool = []
    for pid in pids:
        for cam in cameras:
            if rng.random() < 0.2:
                continue
            for n in rng.sample(range(1, 80), rng.randint(min_images, min_images + 5)):
                path = f"x/{TEST_DIRS[modality]}/cam{cam}/{pid:04d}/{n:04d}.jpg"
                pool.append((path, pid, cam, modality))
    rng.shuffle(pool)
    return pool


@pytest.mark.parametrize("modality", ["visible", "infrared"])
@pytest.mark.parametrize("trial", [0, 1, 9])
def test_llcm_draw_matches_reference(modality, trial):
    # The infrared pool has a camera-3 folder, which the reference never reads.
    pool = _llcm_pool(modality, seed=trial)
    drawn = [pool[i][0] for i in sample_llcm_gallery(pool, trial=trial)]
    assert drawn == reference_draw(pool, LLCM_CAMERAS[modality], trial)


def test_llcm_draw_one_per_identity_camera_in_order():
    for modality in ("visible", "infrared"):
        pool = _llcm_pool(modality)
        drawn = [pool[i] for i in sample_llcm_gallery(pool, trial=4)]
        pairs = [(pid, cam) for _, pid, cam, _ in drawn]
        present = {(pid, cam) for _, pid, cam, _ in pool if cam in LLCM_CAMERAS[modality]}
        assert sorted(pairs) == pairs and set(pairs) == present and len(pairs) == len(present)
        assert {mod for *_, mod in drawn} == {modality}
    infrared = [item for item in (_llcm_pool("infrared")) if item[2] == 3]
    assert infrared and sample_llcm_gallery(infrared) == []


def test_llcm_draw_is_deterministic_and_leaves_global_state():
    pool = _llcm_pool("visible")
    random.seed(1234)
    state = random.getstate()
    assert sample_llcm_gallery(pool, trial=3) == sample_llcm_gallery(pool, trial=3)
    assert sample_llcm_gallery(pool, trial=3) != sample_llcm_gallery(pool, trial=4)
    sample_llcm_gallery(pool, trial=1, shots=10)
    assert random.getstate() == state
    assert_pool_order_does_not_change_the_draw(sample_llcm_gallery, pool)


def test_llcm_multi_shot_uses_the_same_generator():
    # Not in the reference (single-shot only): `shots` distinct images per (identity, camera)
    # drawn with random.Random(trial).sample, as the SYSU draw does.
    pool = _llcm_pool("infrared")
    drawn = [pool[i] for i in sample_llcm_gallery(pool, trial=2, shots=10)]
    rng, want = random.Random(2), []
    for pid in sorted({item[1] for item in pool}):
        for cam in LLCM_CAMERAS["infrared"]:
            files = sorted(p for p, i, c, _ in pool if (i, c) == (pid, cam))
            if files:
                want += rng.sample(files, 10)
    assert [path for path, *_ in drawn] == want


@pytest.mark.parametrize("pool,kwargs,match", [
    (_llcm_pool("visible") + _llcm_pool("infrared"), {}, "one modality"),
    ([("a.jpg", 1, 1, True)], {}, "one modality"),
    ([("a.jpg", 1, 1)], {}, "one modality"),
    (_llcm_pool("visible"), {"shots": 0}, "shots"),
    (_llcm_pool("visible"), {"shots": 30}, "fewer than shots=30"),
])
def test_llcm_draw_bad_arguments_raise(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_llcm_gallery(pool, **kwargs)


@pytest.mark.parametrize("kwargs", [{"shots": 2.0}, {"shots": True}, {"trial": "0"}])
def test_llcm_draw_arguments_of_the_wrong_type_raise(kwargs):
    with pytest.raises(TypeError):
        sample_llcm_gallery(_llcm_pool("visible"), **kwargs)


# ---------------------------------------------------------------- LLCM directions


def _reference_script(test_mode, visible, infrared, features, trial):
    """The reference test script's steps: `query` is every image of modality test_mode[1],
    `gallery` the draw from modality test_mode[0] (1 = visible, 2 = infrared); [1, 2] ranks
    query x gallery, [2, 1] transposes and swaps the arguments. Returns the rows and columns
    that eval_llcm ranks, and its result."""
    sets = {1: visible, 2: infrared}
    query = sets[test_mode[1]]
    gallery = [sets[test_mode[0]][i] for i in sample_llcm_gallery(sets[test_mode[0]], trial)]
    if test_mode == [1, 2]:
        rows, columns = query, gallery
    else:
        rows, columns = gallery, query
    feat_rows = np.stack([features[item[0]] for item in rows])
    feat_columns = np.stack([features[item[0]] for item in columns])
    result = evaluate_llcm(-(feat_rows @ feat_columns.T),
                           np.array([item[1] for item in rows]),
                           np.array([item[1] for item in columns]),
                           np.array([item[2] for item in rows]),
                           np.array([item[2] for item in columns]))
    return rows, columns, result


def test_llcm_directions_of_the_reference_script():
    visible, infrared = _llcm_pool("visible", min_images=2), _llcm_pool("infrared", min_images=2)
    rng = np.random.default_rng(0)
    features = {item[0]: rng.standard_normal(8) for item in visible + infrared}

    # [1, 2], "IR to VIS": every infrared image queries the visible draw of the trial.
    rows, columns, ir_to_vis = _reference_script([1, 2], visible, infrared, features, 3)
    assert rows == infrared
    assert columns == [visible[i] for i in sample_llcm_gallery(visible, trial=3)]

    # [2, 1], "VIS to IR": the infrared draw of the trial is ranked against every visible
    # image -- infrared queries again; the trial changes the query set, not the gallery.
    rows, columns, vis_to_ir = _reference_script([2, 1], visible, infrared, features, 3)
    assert rows == [infrared[i] for i in sample_llcm_gallery(infrared, trial=3)]
    assert columns == visible
    assert {item[3] for item in rows} == {"infrared"}
    assert {item[3] for item in columns} == {"visible"}
    assert len(ir_to_vis[0]) == len(vis_to_ir[0]) == 4  # four identities in the gallery


def test_llcm_camera_constants():
    assert {"visible": tuple(range(1, 10)), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)} == LLCM_CAMERAS

"""TEST.SAVE_FEATURES end to end: tiny CIFT runs on SYSU-MM01 (generated), RegDB and LLCM (fake
trees) write their features file at the end of training and at --eval-only, and
tools/evaluate_features.py gives, number for number, the tables the evaluator printed (CIFT
with the transfer, CIFT† without); the backbone branch's features join a CIFT model's output
only while the file is being written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cift.engine.saved_features import with_backbone_features
from cift.evaluation.features_file import read_features_file
from helpers import ROOT, load_script
from helpers.exports import trained_like
from helpers.runs import args, train_net
from helpers.trees import make_llcm, make_regdb

tool = load_script("projects/CIFT/tools/evaluate_features.py", "evaluate_features_runs")
CIFT_T, CIFT_B = "CIFT", "CIFT\u2020"
# the real-data configs' ImageNet start and padding, off for 32x16 images
REAL_DATA = ["MODEL.BACKBONE.PRETRAIN", "False", "INPUT.PADDING.SIZE", "2", "MODEL.DEVICE",
             "cpu", "TEST.IMS_PER_BATCH", "16"]


def run(config: str, out: Path, *extra: str, flags=()) -> dict:
    return train_net.main(args("TEST.SAVE_FEATURES", "True", "MODEL.CIFT.CRI.SAMPLES", "2",
                               "SEED", "0", *extra, out=out, config=str(ROOT / config),
                               flags=flags))


def tool_results(features: Path, out: Path, data_root: Path) -> dict:
    assert tool.run([str(features), "--transfer", "--out", str(out),
                     "--data-root", str(data_root)]) == 0
    return json.loads((out / "protocol_results.json").read_text())


def assert_same_tables(printed: dict, features: Path, out: Path, data_root: Path) -> None:
    saved = read_features_file(features)
    got = tool_results(features, out, data_root)[saved.dataset]
    assert got["transfer"] == printed[CIFT_T]
    assert got["raw"] == printed[CIFT_B]
    for name in ("feats", "feats_r2i", "feats_i2r"):  # L2-normalised, as ranked
        np.testing.assert_allclose(np.linalg.norm(saved.features[name], axis=1), 1, rtol=1e-5)
    assert not np.array_equal(saved.features["feats"], saved.features["feats_i2r"])


def test_sysu_end_of_training_and_eval_only(env, tmp_path):
    out = tmp_path / "run"
    printed = run("configs/Demo/cift_synthetic.yml", out)
    assert_same_tables(printed, out / "features_SyntheticVI.npz", tmp_path / "t1", env)
    evaluated = run("configs/Demo/cift_synthetic.yml", out, "MODEL.WEIGHTS",
                    str(out / "model_final.pth"), flags=("--eval-only",))
    assert evaluated[CIFT_T] == printed[CIFT_T]
    assert_same_tables(evaluated, out / "eval" / "model_final" / "features_SyntheticVI.npz",
                       tmp_path / "t2", env)


def test_regdb_split(tmp_path, monkeypatch):
    make_regdb(tmp_path / "data")
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "data"))
    out = tmp_path / "run"
    printed = run("configs/RegDB/cift_R50.yml", out, *REAL_DATA, "DATASETS.REGDB.SPLIT", "2")
    assert read_features_file(out / "features_RegDB.npz").split == 2
    assert_same_tables(printed, out / "features_RegDB.npz", tmp_path / "t", tmp_path / "data")


def test_llcm(tmp_path, monkeypatch):
    make_llcm(tmp_path / "data")
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "data"))
    out = tmp_path / "run"
    printed = run("configs/LLCM/cift_R50.yml", out, *REAL_DATA, "TEST.LLCM.TRIALS", "3")
    assert_same_tables(printed, out / "features_LLCM.npz", tmp_path / "t", tmp_path / "data")


def test_backbone_features_join_the_output_only_inside_the_block():
    model = trained_like("CIFT")
    images = torch.rand(3, 3, 32, 16) * 255
    with torch.no_grad():
        plain = model(images)
        with with_backbone_features(model):
            joined = model(images)
        backbone = model.heads["b"].neck(model.pooled_features(images))
        after = model(images)
    assert plain.shape == (3, 2, plain.shape[2]) and joined.shape == (3, 3, plain.shape[2])
    torch.testing.assert_close(joined[:, :2], plain)
    torch.testing.assert_close(joined[:, 2], backbone)
    torch.testing.assert_close(after, plain)
    baseline = trained_like("VIBaseline")
    with torch.no_grad(), with_backbone_features(baseline):
        assert baseline(images).ndim == 2
    with torch.no_grad(), with_backbone_features(model, enabled=False):
        assert model(images).shape == plain.shape


@pytest.mark.parametrize("branches", [False, True])
def test_saved_arrays_name_the_features(branches):
    from cift.evaluation.vi_evaluator import saved_arrays

    x = np.arange(24, dtype=np.float32).reshape(3, 2, 4)
    if not branches:
        assert list(saved_arrays(x[:, 0])) == ["feats"]
        return
    arrays = saved_arrays(x, backbone=x[:, 0] + 1)
    assert list(arrays) == ["feats", "feats_r2i", "feats_i2r"]
    np.testing.assert_array_equal(arrays["feats_i2r"], x[:, 1])
    with pytest.raises(ValueError, match="backbone"):
        saved_arrays(x)

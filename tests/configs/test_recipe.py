"""The shipped paper configs run the authors' recipe (docs/recipe.md): each value of the table
read from the loaded configs, and the objects those values build (optimizer groups, BNNeck
initialisation, the train transforms) checked against the authors' settings."""
from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
from fastreid.modeling.meta_arch import build_model

from cift.config import load_config
from cift.data.transforms import PILToFloatTensor, RandomErasing, build_vi_transforms
from cift.engine import CIFTTrainer
from cift.modeling.meta_arch.cift import BNNeckHead
from helpers import ROOT

PAPER_CONFIGS = ["configs/SYSU-MM01/cift_R50.yml", "configs/SYSU-MM01/baseline_R50.yml",
                 "configs/RegDB/cift_R50.yml", "configs/RegDB/baseline_R50.yml"]

# (config key, the authors' value) for every row of docs/recipe.md that is a plain setting
AUTHORS = {
    "MODEL.BACKBONE.NAME": "build_torchvision_resnet_backbone",
    "MODEL.BACKBONE.DEPTH": "50x",
    "MODEL.BACKBONE.LAST_STRIDE": 1,
    "MODEL.BACKBONE.PRETRAIN": True,
    "MODEL.HEADS.NAME": "BNNeckHead",
    "MODEL.HEADS.BN_INIT_STD": 0.01,
    "MODEL.HEADS.CLS_INIT_STD": 0.001,
    "MODEL.LOSSES.HCC.EUC.MARGIN": 0.6,
    "MODEL.LOSSES.HCC.KL.MARGIN": 6.0,
    "SOLVER.OPT": "SGD",
    "SOLVER.MOMENTUM": 0.9,
    "SOLVER.NESTEROV": True,
    "SOLVER.WEIGHT_DECAY": 5e-4,
    "SOLVER.WEIGHT_DECAY_NORM": 5e-4,
    "SOLVER.WEIGHT_DECAY_BIAS": 5e-4,
    "SOLVER.BASE_LR": 0.01,
    "SOLVER.HEADS_LR_FACTOR": 10.0,
    "SOLVER.BIAS_LR_FACTOR": 1.0,
    "SOLVER.SCHED": "MultiStepLR",
    "SOLVER.STEPS": [60, 100],
    "SOLVER.GAMMA": 0.1,
    "SOLVER.WARMUP_MODE": "epoch",
    "SOLVER.WARMUP_EPOCHS": 10,
    "SOLVER.MAX_EPOCH": 120,
    "SOLVER.ITERS_PER_EPOCH": 0,
    "SOLVER.IMS_PER_BATCH": 64,
    "DATALOADER.SAMPLER_TRAIN": "CrossModalityIdentitySampler",
    "DATALOADER.NUM_INSTANCE": 4,
    "INPUT.SIZE_TRAIN": [288, 144],
    "INPUT.SIZE_TEST": [288, 144],
    "INPUT.INTERPOLATION": "bilinear",
    "INPUT.PADDING.ENABLED": True,
    "INPUT.PADDING.SIZE": 10,
    "INPUT.FLIP.ENABLED": True,
    "INPUT.FLIP.PROB": 0.5,
    "INPUT.REA.ENABLED": True,
    "INPUT.REA.PROB": 0.5,
    "INPUT.REA.AREA": [0.02, 0.4],
    "INPUT.REA.RATIO": [0.3, 3.33],
    "INPUT.REA.RATIO_SAMPLING": "uniform",
    "INPUT.REA.ATTEMPTS": 100,
    "INPUT.REA.VALUE": [0.4914 * 255, 0.4822 * 255, 0.4465 * 255],
    "TEST.FLIP.ENABLED": False,
    "TEST.CMC_MODE": "identity",  # the one deliberate difference (docs/recipe.md)
    "SEED": 0,
    "CUDNN_BENCHMARK": False,
}
CIFT_KEYS = {"MODEL.CIFT.GRAPH": "h2ft", "MODEL.CIFT.TAU_HOM": 0.4, "MODEL.CIFT.TAU_HET": 0.2,
             "MODEL.CIFT.TOPK": 4, "MODEL.CIFT.PROJECTION": "identity",
             "MODEL.CIFT.CRI.ENABLED": True, "MODEL.CIFT.CRI.SAMPLES": 10,
             "MODEL.CIFT.CRI.SHARED": True}


def value(cfg, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return list(cfg) if isinstance(cfg, tuple) else cfg


@pytest.mark.parametrize("config", PAPER_CONFIGS)
def test_paper_configs_hold_the_authors_values(config):
    cfg = load_config(str(ROOT / config))
    expected = {**AUTHORS, **(CIFT_KEYS if "cift" in config else {})}
    for key, want in expected.items():
        got = value(cfg, key)
        if isinstance(want, float) or (isinstance(want, list) and isinstance(want[0], float)):
            assert got == pytest.approx(want), key
        else:
            assert got == want, key


def small_paper_cfg(*extra: str):
    """The SYSU CIFT recipe on a ResNet-18 without ImageNet weights (nothing to download)."""
    return load_config(str(ROOT / "configs/SYSU-MM01/cift_R50.yml"), [
        "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
        "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "10", *extra])


def test_optimizer_groups_follow_the_authors():
    """SGD Nesterov, momentum 0.9 and weight decay 5e-4 in every group; BNNecks and classifiers
    at 10 x the base LR, the backbone and CRI parameters at the base LR; frozen BNNeck biases
    are not optimised."""
    cfg = small_paper_cfg()
    model = build_model(cfg)
    optimizer, _ = CIFTTrainer.build_optimizer(cfg, model)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for group in optimizer.param_groups:
        assert group["momentum"] == 0.9 and group["nesterov"] is True
        assert group["weight_decay"] == pytest.approx(5e-4)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert name.endswith("neck.bias") and id(param) not in lr_of, name
            continue
        want = 0.1 if name.startswith("heads.") else 0.01
        assert lr_of[id(param)] == pytest.approx(want), name
    assert any(n.startswith("cri.") for n, _ in model.named_parameters())


def test_bnneck_and_classifier_initialisation():
    """BN weight ~ N(1, 0.01), bias 0 and frozen; bias-free classifier weight ~ N(0, 0.001)."""
    torch.manual_seed(0)
    head = BNNeckHead(feat_dim=2048, num_classes=400, bn_std=0.01, cls_std=0.001)
    w = head.neck.weight.detach()
    assert w.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert w.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.all(head.neck.bias == 0) and not head.neck.bias.requires_grad
    assert head.classifier.bias is None
    c = head.classifier.weight.detach()
    assert abs(c.mean().item()) < 1e-5 and c.std().item() == pytest.approx(0.001, rel=0.05)


def test_train_and_test_transforms_are_the_authors_steps():
    """Resize (bilinear) -> Pad 10 -> RandomCrop -> HFlip 0.5 -> tensor -> RandomErasing; test:
    Resize (bilinear) -> tensor (normalisation happens inside the model)."""
    cfg = small_paper_cfg()
    train = build_vi_transforms(cfg, is_train=True).transforms
    assert [type(t) for t in train] == [T.Resize, T.Pad, T.RandomCrop, T.RandomHorizontalFlip,
                                        PILToFloatTensor, RandomErasing]
    resize, pad, crop, flip, _, erase = train
    assert resize.size == [288, 144] or tuple(resize.size) == (288, 144)
    assert resize.interpolation == T.InterpolationMode.BILINEAR
    assert pad.padding == 10 and tuple(crop.size) == (288, 144) and flip.p == 0.5
    assert (erase.p, erase.area, erase.ratio, erase.attempts, erase.ratio_sampling) == (
        0.5, (0.02, 0.4), (0.3, 3.33), 100, "uniform")
    test = build_vi_transforms(cfg, is_train=False).transforms
    assert [type(t) for t in test] == [T.Resize, PILToFloatTensor]
    assert test[0].interpolation == T.InterpolationMode.BILINEAR

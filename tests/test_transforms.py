"""Training transforms of DESIGN §3 on fastreid's 0-255 convention."""
import numpy as np
import pytest
import torch
from PIL import Image

from cift import load_config
from cift.data.transforms import build_vi_transforms

DEMO = "configs/Demo/baseline_synthetic.yml"


@pytest.fixture()
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (60, 30, 3), dtype=np.uint8))


def cfg(*opts: str):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return load_config(str(root / DEMO), list(opts))


def test_test_transform_resizes_to_a_0_255_tensor(image):
    out = build_vi_transforms(cfg("INPUT.SIZE_TEST", "[40, 20]"), is_train=False)(image)
    assert out.shape == (3, 40, 20) and out.dtype == torch.float32
    assert out.max() > 1.5 and out.max() <= 255 and out.min() >= 0


def test_train_transform_output_size(image):
    out = build_vi_transforms(cfg("INPUT.SIZE_TRAIN", "[40, 20]"), is_train=True)(image)
    assert out.shape == (3, 40, 20)


def test_random_erasing_fills_cifar_mean_before_normalisation(image):
    torch.manual_seed(0)
    transform = build_vi_transforms(cfg("INPUT.REA.PROB", "1.0", "INPUT.PADDING.ENABLED", "False",
                                        "INPUT.FLIP.ENABLED", "False"), is_train=True)
    fill = torch.tensor([0.4914, 0.4822, 0.4465]) * 255
    out = transform(image)
    erased = (out - fill[:, None, None]).abs().max(dim=0).values < 1e-3
    area = erased.float().mean().item()
    assert 0.02 * 0.5 <= area <= 0.4 + 1e-6  # a rectangle of the configured area range


def test_padding_then_crop_shifts_content(image):
    torch.manual_seed(3)
    plain = build_vi_transforms(cfg("INPUT.REA.ENABLED", "False", "INPUT.FLIP.ENABLED", "False",
                                    "INPUT.PADDING.ENABLED", "False"), is_train=True)
    padded = build_vi_transforms(cfg("INPUT.REA.ENABLED", "False", "INPUT.FLIP.ENABLED", "False"),
                                 is_train=True)
    outs = [padded(image) for _ in range(8)]
    assert any(not torch.equal(o, plain(image)) for o in outs)
    assert any((o == 0).all(dim=0).any() for o in outs)  # zero padding entered the crop

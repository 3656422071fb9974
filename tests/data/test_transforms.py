"""Training transforms of the authors' recipe (docs/recipe.md) on fastreid's 0-255 convention."""

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from cift import CiftInputError, load_config
from cift.data.transforms import (
    RandomErasing,
    build_vi_transforms,
    erased_size,
    sample_erasing_box,
)
from helpers import DEMO, ROOT


@pytest.fixture()
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (60, 30, 3), dtype=np.uint8))


def cfg(*opts: str):
    return load_config(DEMO, list(opts))


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


# --- the authors' random erasing (their utils.RandomErasing) and resize ---------------------

def authors_erasing_boxes(height, width, n, seed, attempts=100):
    """The authors' draw, one image at a time with numpy's RandomState: area fraction
    U(0.02, 0.4), aspect ratio h/w U(0.3, 3.33), h = round(sqrt(area r)), w = round(sqrt(area
    / r)), accepted when h < height and w < width, top-left randint(0, height - h) x
    randint(0, width - w); None after `attempts` misses."""
    import math

    rs = np.random.RandomState(seed)
    boxes = []
    for _ in range(n):
        box = None
        for _ in range(attempts):
            target = rs.uniform(0.02, 0.4) * height * width
            r = rs.uniform(0.3, 3.33)
            h, w = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
            if h < height and w < width:
                box = (rs.randint(0, height - h), rs.randint(0, width - w), h, w)
                break
        boxes.append(box)
    return boxes


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max |F_a - F_b| over the pooled values."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, side="right") / a.size
                        - np.searchsorted(b, grid, side="right") / b.size).max())


def our_boxes(height, width, n, seed, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return [sample_erasing_box(height, width, generator=generator, **kwargs) for _ in range(n)]


def test_erased_size_formula_and_strict_fit():
    import math

    for fraction in (0.02, 0.1, 0.25, 0.4):
        for r in (0.3, 0.9, 1.7, 3.33):
            area = fraction * 288 * 144
            h, w = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            expected = (h, w) if h < 288 and w < 144 else None
            assert erased_size(288, 144, fraction, r) == expected
    # 10 x 10 image: half its area at h/w = 2 is exactly 10 x 5, as tall as the image
    assert erased_size(10, 10, 0.5, 2.0) is None
    assert erased_size(10, 10, 0.5, 0.5) is None  # 5 x 10: as wide
    assert erased_size(10, 10, 0.45, 2.0) == (9, 5)


def test_erasing_rectangles_follow_the_authors_distribution():
    """Aspect ratio, area and placement of the erased rectangle on a 288 x 144 image: ours
    match the authors' formula in distribution; torchvision's RandomErasing (log-uniform
    ratio, 10 tries) does not: its median h/w is about 1.2, the authors' about 1.9."""
    n, H, W = 3000, 288, 144
    ref = [b for b in authors_erasing_boxes(H, W, n, seed=0) if b]
    ours = [b for b in our_boxes(H, W, n, seed=0) if b]

    def ratio(boxes):
        return np.array([h / w for _, _, h, w in boxes])

    def area(boxes):
        return np.array([h * w / (H * W) for _, _, h, w in boxes])

    # KS critical value at alpha = 0.001 for two samples of ~3000: ~0.05
    assert ks_distance(ratio(ours), ratio(ref)) < 0.05
    assert ks_distance(area(ours), area(ref)) < 0.05
    assert abs(np.median(ratio(ours)) - np.median(ratio(ref))) < 0.1
    assert area(ours).min() > 0.02 * 0.9 and area(ours).max() < 0.4 * 1.05
    # top-left uniform over [0, H - h) x [0, W - w): never touching the bottom or right edge
    assert max(t + h for t, _, h, _ in ours) == H - 1
    assert max(left + w for _, left, _, w in ours) == W - 1
    assert min(t for t, _, _, _ in ours) == 0 and min(left for _, left, _, _ in ours) == 0
    assert ks_distance(np.array([t / (H - h) for t, _, h, _ in ours]),
                       np.array([t / (H - h) for t, _, h, _ in ref])) < 0.05

    # torchvision's draw (what the recipe used before) fails the same check
    torch.manual_seed(0)
    image = torch.zeros(3, H, W)
    tv = [T.RandomErasing.get_params(image, scale=(0.02, 0.4), ratio=(0.3, 3.33), value=[0])
          for _ in range(n)]
    tv = [(i, j, h, w) for i, j, h, w, _ in tv if (h, w) != (H, W)]
    assert ks_distance(ratio(tv), ratio(ref)) > 0.15
    assert np.median(ratio(tv)) < 1.4 < 1.8 < np.median(ratio(ours))
    # and so does our log-uniform option
    log = [b for b in our_boxes(H, W, n, seed=1, ratio_sampling="log-uniform") if b]
    assert ks_distance(ratio(log), ratio(ref)) > 0.15


def test_erasing_tries_up_to_100_rectangles():
    """On a 300 x 5 image few proposals fit: after 100 tries about 14 % of images stay
    unerased (the authors' rate), after torchvision's 10 tries about 81 %."""
    n = 1500
    ref = np.mean([b is None for b in authors_erasing_boxes(300, 5, n, seed=0)])
    ours = np.mean([b is None for b in our_boxes(300, 5, n, seed=0)])
    ten = np.mean([b is None for b in our_boxes(300, 5, n, seed=0, attempts=10)])
    assert abs(ours - ref) < 0.04
    assert ten > 0.7 > 0.2 > ours


def test_erasing_is_reproducible_under_torch_seed(image):
    transform = build_vi_transforms(cfg("INPUT.REA.PROB", "1.0"), is_train=True)
    torch.manual_seed(5)
    first = [transform(image) for _ in range(4)]
    torch.manual_seed(5)
    assert all(torch.equal(a, transform(image)) for a in first)


def test_paper_config_erasing_settings():
    c = load_config(str(ROOT / "configs/Base-CIFT.yml"))
    erasing = build_vi_transforms(c, is_train=True).transforms[-1]
    assert isinstance(erasing, RandomErasing)
    assert (erasing.p, erasing.area, erasing.ratio, erasing.attempts, erasing.ratio_sampling) == (
        0.5, (0.02, 0.4), (0.3, 3.33), 100, "uniform")
    torch.testing.assert_close(erasing.value, torch.tensor([0.4914, 0.4822, 0.4465]) * 255)
    assert c.INPUT.INTERPOLATION == "bilinear"


def test_resize_is_pil_bilinear(image):
    """Train and test resize equal PIL's bilinear resize (torchvision's default on PIL images,
    the authors' transform), on the 0-255 scale."""
    expected = torch.from_numpy(np.array(image.resize((20, 40), Image.BILINEAR)))
    expected = expected.permute(2, 0, 1).float()
    test = build_vi_transforms(cfg("INPUT.SIZE_TEST", "[40, 20]"), is_train=False)(image)
    assert torch.equal(test, expected)
    train = build_vi_transforms(cfg("INPUT.SIZE_TRAIN", "[40, 20]", "INPUT.REA.ENABLED", "False",
                                    "INPUT.FLIP.ENABLED", "False", "INPUT.PADDING.ENABLED",
                                    "False"), is_train=True)(image)
    assert torch.equal(train, expected)
    bicubic = build_vi_transforms(cfg("INPUT.SIZE_TEST", "[40, 20]", "INPUT.INTERPOLATION",
                                      "bicubic"), is_train=False)(image)
    assert not torch.equal(bicubic, expected)
    with pytest.raises(CiftInputError, match="INPUT.INTERPOLATION 'nearest'"):
        build_vi_transforms(cfg("INPUT.INTERPOLATION", "nearest"), is_train=False)

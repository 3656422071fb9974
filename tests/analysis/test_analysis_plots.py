"""Figures: CMC curves, toy heat map / surface and affinity grids have the expected pixel size,
and a grid holds the expected tiles with the expected frame colours."""

import numpy as np
import pytest
from PIL import Image

from cift.analysis.plots import (
    QUERY,
    RIGHT,
    WRONG,
    GridLayout,
    Tile,
    affinity_grid,
    plot_toy_heatmap,
    plot_toy_surface,
)
from cift.errors import CiftInputError
from cift.evaluation.cmc_plot import plot_cmc_curves, save_cmc_curves

CONTENT = (200, 200, 0)  # the colour of every test image


def size_of(path):
    with Image.open(path) as image:
        return image.size


def test_cmc_curves_png(tmp_path):
    curves = {"CIFT all-single": np.linspace(40, 95, 30), "CIFT† all-single": [50.0, 70.0, 80.0]}
    path = plot_cmc_curves(curves, tmp_path / "sub" / "cmc.png", title="SyntheticVI")
    assert size_of(path) == (640, 480)
    with pytest.raises(ValueError, match="no CMC curve"):
        plot_cmc_curves({}, tmp_path / "none.png")
    with pytest.raises(ValueError, match="empty"):
        plot_cmc_curves({"x": []}, tmp_path / "none.png")


def test_save_cmc_curves_one_file_per_test_set(tmp_path):
    paths = save_cmc_curves({"SyntheticVI": {"all-single": [10.0, 20.0]},
                             "Reg DB/1": {"visible-thermal": [30.0]}, "empty": {}}, tmp_path)
    assert [p.name for p in paths] == ["cmc_SyntheticVI.png", "cmc_Reg_DB_1.png"]
    assert all(size_of(p) == (640, 480) for p in paths)


def test_toy_heatmap_and_surface_png(tmp_path):
    qx, qa = np.linspace(0, 1, 4), np.linspace(0, 1, 5)
    qy = qx[:, None] * 0.6 + qa[None, :] * 0.4
    assert size_of(plot_toy_heatmap(qx, qa, qy, tmp_path / "h.png", fixed_qx=0.57)) \
        == (640, 520)
    assert size_of(plot_toy_surface(qx, qa, qy, tmp_path / "s.png")) == (640, 520)


@pytest.fixture()
def images(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (30, 60), CONTENT).save(path)
        paths.append(str(path))
    return paths


def expected_size(rows, groups, tiles, header, tw=64, th=128, b=4, space=4, gap=24, pad=8,
                  caption=16, header_h=20):
    """The layout written out independently of GridLayout."""
    cell_w, cell_h = tw + 2 * b, th + 2 * b + caption
    group_w = tiles * cell_w + (tiles - 1) * space
    width = 2 * pad + groups * group_w + (groups - 1) * gap
    height = 2 * pad + (header_h if header else 0) + rows * cell_h + (rows - 1) * space
    return width, height


def count_frames(image, layout):
    """Frame colours found at every tile's top-left pixel, and whether its inside is the
    picture."""
    colours = {QUERY: 0, RIGHT: 0, WRONG: 0}
    for r in range(layout.rows):
        for g in range(layout.groups):
            for t in range(layout.tiles):
                x0, y0, x1, y1 = layout.frame_box(r, g, t)
                colours[image.getpixel((x0, y0))] += 1
                assert image.getpixel((x1 - 1, y1 - 1)) == image.getpixel((x0, y0))
                inside = image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))
                assert inside == CONTENT
    return colours


@pytest.mark.parametrize("groups", [1, 2])
def test_affinity_grid_size_and_tiles(tmp_path, images, groups):
    q, right, wrong = images
    row = [Tile(q, None, "id 1"), Tile(right, True, "0.41"), Tile(wrong, False, "0.20"),
           Tile(right, True, "0.05")]
    rows = [[row] * groups, [row] * groups, [row] * groups]
    headers = ["with CRI", "without CRI"][:groups]
    path = affinity_grid(rows, tmp_path / "grid.png", headers=headers)
    layout = GridLayout(3, groups, 4, header=True)
    assert layout.size == expected_size(3, groups, 4, True)
    with Image.open(path) as image:
        image = image.convert("RGB")
        assert image.size == layout.size
        assert count_frames(image, layout) == {QUERY: 3 * groups, RIGHT: 6 * groups,
                                               WRONG: 3 * groups}


def test_affinity_grid_layout_options_and_errors(tmp_path, images):
    q, right, _ = images
    path = affinity_grid([[[Tile(q), Tile(right, True)]]], tmp_path / "g.png",
                         tile_size=(32, 48), border=2)
    assert size_of(path) == expected_size(1, 1, 2, False, tw=32, th=48, b=2)
    with pytest.raises(ValueError, match="same number"):
        affinity_grid([[[Tile(q)]], [[Tile(q), Tile(q)]]], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="headers"):
        affinity_grid([[[Tile(q)]]], tmp_path / "bad.png", headers=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        affinity_grid([], tmp_path / "bad.png")
    with pytest.raises(CiftInputError, match="cannot read"):
        affinity_grid([[[Tile(str(tmp_path / "missing.jpg"))]]], tmp_path / "bad.png")

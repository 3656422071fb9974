"""Tests of the shipped configs and of `add_cift_config` / `load_config`.

Every YAML under configs/ must load through fastreid's defaults + `add_cift_config`, so that a
typo'd key or component name fails here, not at the start of a long run.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fastreid.config import get_cfg
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.heads import REID_HEADS_REGISTRY
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

import cift
from cift import config as cift_config
from cift.export.model_zoo import flat_config
from helpers import ROOT
from helpers.errors import one_line_error

REPO = ROOT
CONFIGS = REPO / "configs"
CONFIG_FILES = sorted(CONFIGS.rglob("*.yml")) + sorted(CONFIGS.rglob("*.yaml"))
LEAF_CONFIGS = [p for p in CONFIG_FILES if not p.name.startswith("Base-")]


def config_id(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_there_are_configs() -> None:
    assert (CONFIGS / "Base-CIFT.yml") in CONFIG_FILES
    assert any(p.parent.name == "Demo" for p in LEAF_CONFIGS)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_config_loads_frozen(path: Path) -> None:
    cfg = cift.load_config(str(path))
    assert cfg.is_frozen()
    with pytest.raises(AttributeError):
        cfg.OUTPUT_DIR = "elsewhere"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_base_stays_inside_configs(path: Path) -> None:
    base = yaml.safe_load(path.read_text()).get("_BASE_")
    if base is None:
        return
    assert not Path(base).is_absolute(), base
    resolved = (path.parent / base).resolve()
    assert resolved.is_file(), base
    assert resolved.is_relative_to(CONFIGS.resolve()), base


@pytest.mark.parametrize("path", LEAF_CONFIGS, ids=config_id)
def test_leaf_names_are_registered(path: Path) -> None:
    cfg = cift.load_config(str(path))
    META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)
    REID_HEADS_REGISTRY.get(cfg.MODEL.HEADS.NAME)
    assert cfg.DATASETS.NAMES and cfg.DATASETS.TESTS
    for name in cfg.DATASETS.NAMES + cfg.DATASETS.TESTS:
        DATASET_REGISTRY.get(name)
    assert cfg.OUTPUT_DIR and not Path(cfg.OUTPUT_DIR).is_absolute()


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yml"
    base = (CONFIGS / "Base-CIFT.yml").as_posix()
    path.write_text(f"_BASE_: {base}\nMODEL:\n  LOSSES:\n    HCC:\n      EUC:\n"
                    f"        MARGN: 0.5\n")
    with pytest.raises(cift.CiftInputError) as info:
        cift.load_config(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "MODEL.LOSSES.HCC.EUC.MARGN" in message


def test_wrong_value_type_names_file(tmp_path: Path) -> None:
    path = tmp_path / "wrong_type.yml"
    path.write_text("TEST:\n  SYSU:\n    TRIALS: ten\n")
    with pytest.raises(cift.CiftInputError, match=re.escape(str(path))):
        cift.load_config(str(path))


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "no_such.yml"
    with pytest.raises(cift.CiftInputError, match=re.escape(str(path))):
        cift.load_config(str(path))


def test_bad_override_names_key() -> None:
    leaf = str(LEAF_CONFIGS[0])
    with pytest.raises(cift.CiftInputError, match=r"NOT\.A\.KEY") as info:
        cift.load_config(leaf, ["NOT.A.KEY", "1"])
    assert "\n" not in str(info.value)


def test_overrides_apply_after_the_file() -> None:
    cfg = cift.load_config(str(CONFIGS / "Base-CIFT.yml"),
                           ["TEST.SYSU.TRIALS", "3", "MODEL.LOSSES.HCC.KL.MARGIN", "2.5"])
    assert cfg.TEST.SYSU.TRIALS == 3 and cfg.MODEL.LOSSES.HCC.KL.MARGIN == 2.5
    assert cift.load_config(str(CONFIGS / "Base-CIFT.yml")).TEST.SYSU.TRIALS == 10  # default


def test_without_a_file_the_defaults_name_the_model_to_choose() -> None:
    """fastreid's default model (its Baseline) and data set (Market1501) are not cift's: a
    config file chooses them."""
    assert one_line_error(cift.load_config).startswith("MODEL.META_ARCHITECTURE 'Baseline': "
                                                       "expected one of ('CIFT', 'VIBaseline')")


def test_add_cift_config_keeps_fastreid_defaults() -> None:
    before = flat_config(get_cfg())
    after = flat_config(cift.add_cift_config(get_cfg()))
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == set(ADDED_KEYS) == set(cift_config.CIFT_KEYS)


# --- every key added by add_cift_config has a comment above it ---------------------------

SOURCE = Path(cift_config.__file__).read_text().splitlines()
ENTRY = re.compile(r'^\s*"([A-Z0-9_.]+)": Key\(')
COMMENT = re.compile(r"^\s*#")
ADDED = [(i, ENTRY.match(line).group(1)) for i, line in enumerate(SOURCE) if ENTRY.match(line)]
ADDED_KEYS = [key for _, key in ADDED]


def test_config_source_was_parsed() -> None:
    assert len(ADDED_KEYS) >= 40 and "MODEL.LOSSES.HCC.EUC.MARGIN" in ADDED_KEYS


@pytest.mark.parametrize("line, key", ADDED, ids=[k for _, k in ADDED])
def test_key_has_a_comment_above(line: int, key: str) -> None:
    assert COMMENT.match(SOURCE[line - 1]), f"config.py:{line + 1}: no comment above {key}"


PAPER_CONFIGS = [p for p in LEAF_CONFIGS if p.parent.name != "Demo"]


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=config_id)
def test_paper_configs_are_reproducible_and_use_the_authors_recipe(path: Path) -> None:
    """Issue 11.8 and 11.4-11.7: fixed seed 0 (the authors' set_seed(0)), no cuDNN autotuning;
    bilinear resize, the authors' erasing, shared CRI parameters, torchvision's stem."""
    cfg = cift.load_config(str(path))
    assert cfg.SEED == 0 and cfg.CUDNN_BENCHMARK is False
    assert cfg.INPUT.INTERPOLATION == "bilinear"
    assert (cfg.INPUT.REA.RATIO_SAMPLING, cfg.INPUT.REA.ATTEMPTS) == ("uniform", 100)
    assert cfg.MODEL.CIFT.CRI.SHARED is True
    assert cfg.TEST.CMC_MODE == "identity"
    assert cfg.MODEL.BACKBONE.NAME == "build_torchvision_resnet_backbone"
    assert cfg.MODEL.BACKBONE.PRETRAIN is True and cfg.MODEL.BACKBONE.LAST_STRIDE == 1

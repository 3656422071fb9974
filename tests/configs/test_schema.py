"""The config schema (cift.config_schema, cift.config_fastreid, cift.config): every key of the
merged defaults has an entry, and each kind of constraint refuses a bad value at load in one
line, `<KEY> <value!r>: expected <what>`."""
from __future__ import annotations

import math

import pytest

from cift.config import (
    CIFT_KEYS,
    SCHEMA,
    check_keys,
    check_value,
    default_config,
    load_config,
)
from cift.config_fastreid import FASTREID_KEYS
from cift.config_files import decode_value
from cift.config_schema import Unused, checked_value
from cift.errors import CiftInputError
from cift.export.model_zoo import flat_config
from helpers import DEMO, ROOT
from helpers import DEMO_CIFT as CIFT
from helpers.errors import one_line_error

# fastreid's defaults name components cift does not run; every config file chooses its own.
CHOSEN_BY_A_CONFIG = {"MODEL.META_ARCHITECTURE", "MODEL.HEADS.NAME", "DATASETS.NAMES",
                      "DATASETS.TESTS"}


def test_every_key_of_the_merged_defaults_has_one_schema_entry():
    keys = set(flat_config(default_config()))
    assert keys - set(SCHEMA) == set()  # a key nobody constrained
    assert set(SCHEMA) - keys == set()  # an entry for a key that does not exist
    assert not set(FASTREID_KEYS) & set(CIFT_KEYS)


@pytest.mark.parametrize("key", sorted(CIFT_KEYS))
def test_a_cift_default_passes_its_own_constraint(key):
    default = CIFT_KEYS[key].default
    assert checked_value(key, default, CIFT_KEYS[key], default) == default


@pytest.mark.parametrize("key", sorted(set(FASTREID_KEYS) - CHOSEN_BY_A_CONFIG))
def test_a_fastreid_default_passes_its_constraint(key):
    default = flat_config(default_config())[key]
    assert checked_value(key, default, FASTREID_KEYS[key], default) == default


def test_the_shipped_relations_hold_for_the_defaults():
    cfg = default_config()
    check_keys(cfg, [key for key in SCHEMA if key not in CHOSEN_BY_A_CONFIG])


UNUSED = "not used by cift"

# (KEY, VALUE as on the command line, what the one line says after "<KEY> <value!r>: expected ")
BAD_VALUES = [
    # type
    ("TEST.SYSU.TRIALS", "ten", "an int >= 1"),
    ("SOLVER.MAX_EPOCH", "2.0", "an int >= 1"),
    ("MODEL.CIFT.TAU_HET", "warm", "a finite number > 0"),
    ("MODEL.CIFT.CRI.ENABLED", "1", "True or False"),
    ("TEST.MAIN_METRIC", "3", "a string"),
    # range: > 0, >= 0, finite, probability
    ("SOLVER.BASE_LR", "-0.01", "a finite number > 0"),
    ("SOLVER.BASE_LR", "1e999", "a finite number > 0"),
    ("SOLVER.WEIGHT_DECAY", "-0.1", "a finite number >= 0"),
    ("MODEL.LOSSES.CE.SCALE", "-1", "a finite number >= 0"),
    ("MODEL.LOSSES.HCC.KL.SCALE", "-1.0", "a finite number >= 0"),
    ("SOLVER.MAX_EPOCH", "0", "an int >= 1"),
    ("SOLVER.MAX_EPOCH", "-1", "an int >= 1"),
    ("TEST.EVAL_PERIOD", "-1", "an int >= 1"),
    ("SOLVER.CHECKPOINT_PERIOD", "0", "an int >= 1"),
    ("SOLVER.CHECKPOINT_PERIOD", "-1", "an int >= 1"),
    ("SOLVER.LOG_PERIOD", "0", "an int >= 1"),
    ("SOLVER.ITERS_PER_EPOCH", "-5", "an int >= 0"),
    ("TEST.IMS_PER_BATCH", "0", "an int >= 1"),
    ("SOLVER.IMS_PER_BATCH", "-16", "an int >= 1"),
    ("DATALOADER.NUM_WORKERS", "-1", "an int >= 0"),
    ("SOLVER.MOMENTUM", "-1", "a finite number in [0, 1)"),
    ("INPUT.REA.PROB", "2.0", "a finite number in [0, 1]"),
    ("DIST_TIMEOUT_S", "-5", "a finite number in [0, 1000000000]"),
    ("SEED", "-2", "an int in -1..2147483647"),
    ("SEED", "4294967296", "an int in -1..2147483647"),
    ("DATASETS.REGDB.SPLIT", "11", "an int in 1..10"),
    ("MODEL.CIFT.TOPK", "0", "an int >= 1"),
    # choices
    ("SOLVER.OPT", "Lion", "one of ('SGD', 'Adam', 'AdamW')"),
    ("MODEL.CIFT.GRAPH", "gcn", "one of ('h2ft', 'gft')"),
    ("MODEL.BACKBONE.LAST_STRIDE", "True", "one of (1, 2)"),
    ("TEST.METRIC", "euclidean",
     "one of ('cosine',) (the VI-ReID evaluator ranks by cosine similarity)"),
    ("SOLVER.SCHED", "CosineAnnealingLR",
     "one of ('MultiStepLR',) (the CIFT trainer runs the multi-step schedule per epoch)"),
    ("MODEL.DEVICE", "tpu", "cpu or cuda[:N]"),
    ("MODEL.META_ARCHITECTURE", "Baseline", "one of ('CIFT', 'VIBaseline') (fastreid's "
     "Baseline, MGN, MoCo, Distiller: not supported)"),
    ("MODEL.HEADS.NAME", "EmbeddingHead", "one of ('BNNeckHead',)"),
    ("DATASETS.TESTS", "('Market1501',)", "1 or more values among ('LLCM', 'RegDB', 'SYSUMM01', "
     "'SyntheticVI') (registered VI-ReID data sets)"),
    # sequences: length, element, order, distinct
    ("INPUT.SIZE_TRAIN", "[32]", "2 ints >= 1"),
    ("INPUT.SIZE_TRAIN", "[0, 0]", "2 ints >= 1"),
    ("INPUT.SIZE_TEST", "[32, 0]", "2 ints >= 1"),
    ("MODEL.PIXEL_STD", "[0, 0, 0]", "3 finite numbers > 0"),
    ("MODEL.PIXEL_MEAN", "[1.0, 2.0]", "3 finite numbers"),
    ("SOLVER.STEPS", "['a']", "a sequence of ints >= 1 (ascending)"),
    ("SOLVER.STEPS", "[10, 5]", "a sequence of ints >= 1 (ascending)"),
    ("TEST.SYSU.MODES", "()", "1 or more values among ('all', 'indoor') (distinct)"),
    ("TEST.SYSU.SHOTS", "(1, 1)", "1 or more ints >= 1 (distinct)"),
    ("INPUT.REA.AREA", "(0.4, 0.02)", "2 finite numbers in (0, 1] (in non-decreasing order)"),
    ("MODEL.FREEZE_LAYERS", "['back(bone']", "a sequence of regular expressions"),
]


@pytest.mark.parametrize("key, value, what", BAD_VALUES, ids=[f"{k}={v}" for k, v, _ in BAD_VALUES])
def test_a_bad_value_is_refused_at_load_in_one_line(key, value, what):
    value_read = decode_value(value)  # as the command line gives it: a literal or a string
    assert one_line_error(load_config, DEMO, [key, value]) == (
        f"{key} {value_read!r}: expected {what}")


BASE = str(ROOT / "configs/Base-CIFT.yml")  # where the demo's recipe keys are set
# (options, the line): relations between keys; a key set in a file is named with the file
RELATIONS = [
    (["MODEL.BACKBONE.FEAT_DIM", "100"],
     "MODEL.BACKBONE.FEAT_DIM 100: expected 512, the output channels of MODEL.BACKBONE.DEPTH 18x"),
    (["MODEL.BACKBONE.DEPTH", "50x"],
     f"{DEMO}: MODEL.BACKBONE.FEAT_DIM 512: expected 2048, the output channels of "
     "MODEL.BACKBONE.DEPTH 50x"),
    (["SOLVER.MAX_EPOCH", "5"],
     f"{DEMO}: SOLVER.STEPS [6]: expected ascending epochs in 1..SOLVER.MAX_EPOCH (5)"),
    (["SOLVER.MOMENTUM", "0.0"],
     f"{BASE}: SOLVER.NESTEROV True: expected False with SOLVER.MOMENTUM 0.0 (Nesterov needs "
     "momentum > 0)"),
    (["MODEL.BACKBONE.WITH_IBN", "True"],
     "MODEL.BACKBONE.WITH_IBN True: expected False with MODEL.BACKBONE.NAME "
     "build_torchvision_resnet_backbone (no such blocks; build_resnet_backbone has them)"),
    (["SOLVER.FREEZE_ITERS", "100"],
     "SOLVER.FREEZE_ITERS 100: expected 0 while MODEL.FREEZE_LAYERS is empty (nothing to freeze)"),
    (["TEST.RETRIEVAL.TOP_R", "5", "TEST.RERANK.ENABLED", "True"],
     "TEST.RETRIEVAL.TOP_R 5: expected 0 with TEST.RERANK.ENABLED True (re-ranking needs the "
     "whole distance matrix; set TOP_R 0 or disable RERANK)"),
    (["DATASETS.SYNTHETIC.TEST_IDS", "450"],
     f"{DEMO}: DATASETS.SYNTHETIC.NUM_IDS 460: expected more than DATASETS.SYNTHETIC.TEST_IDS + "
     "VAL_IDS (450 + 10): the rest are the training identities"),
    (["DATALOADER.SAMPLER_TRAIN", "SetReWeightSampler"],
     "DATALOADER.SET_WEIGHT []: expected one weight > 0 per camera set with "
     "DATALOADER.SAMPLER_TRAIN SetReWeightSampler"),
]


@pytest.mark.parametrize("opts, line", RELATIONS, ids=[o[0] for o, _ in RELATIONS])
def test_a_value_that_does_not_fit_another_key_is_refused(opts, line):
    assert one_line_error(load_config, DEMO, opts) == line


@pytest.mark.parametrize("key, value, default", [
    ("MODEL.LOSSES.TRI.MARGIN", "0.5", 0.3),
    ("MODEL.LOSSES.NAME", "('TripletLoss',)", ("CrossEntropyLoss",)),
    ("INPUT.CJ.ENABLED", "True", False),
    ("SOLVER.DELAY_EPOCHS", "3", 0),
    ("TEST.AQE.ENABLED", "True", False),
    ("KD.EMA.ENABLED", "True", False),
    ("MODEL.HEADS.WITH_BNNECK", "True", False),
])
def test_a_fastreid_key_cift_does_not_use_is_refused_when_set(key, value, default):
    message = one_line_error(load_config, DEMO, [key, value])
    assert message.startswith(f"{key} ") and f": expected {default!r} (fastreid's default): " \
        f"{UNUSED} (" in message, message
    assert isinstance(SCHEMA[key], Unused)
    load_config(DEMO, [key, repr(default)])  # its default is accepted


def test_unused_keys_say_what_reads_them_and_name_their_replacement():
    assert one_line_error(load_config, DEMO, ["MODEL.LOSSES.TRI.SCALE", "0.5"]) == (
        "MODEL.LOSSES.TRI.SCALE 0.5: expected 1.0 (fastreid's default): not used by cift (read "
        "by fastreid's Baseline / EmbeddingHead only: VIBaseline and CIFT train with CE + HCC)")
    assert one_line_error(load_config, DEMO, ["DATASETS.COMBINEALL", "True"]) == (
        "DATASETS.COMBINEALL True: expected False (fastreid's default): not used by cift "
        "(fastreid's train loader only; cift's trains on the train split of each data set); "
        "use DATASETS.NAMES")


@pytest.mark.parametrize("old, new", [("DATASETS.REGDB.TRIAL", "DATASETS.REGDB.SPLIT"),
                                      ("TEST.TRANSFER.BACKEND", "TEST.SEARCH.BACKEND"),
                                      ("TEST.RETRIEVAL.BACKEND", "TEST.SEARCH.BACKEND")])
def test_a_removed_key_is_unknown_and_names_its_replacement(old, new, tmp_path):
    assert one_line_error(load_config, DEMO, [old, "4"]) == f"{old}: unknown key; it is now {new}"
    *groups, last = old.split(".")
    path = tmp_path / "old.yml"
    path.write_text(f"_BASE_: {DEMO}\n{groups[0]}:\n  {groups[1]}:\n    {last}: 4\n")
    assert one_line_error(load_config, str(path)) == (
        f"{path}: {old}: unknown key; it is now {new}")


def test_a_misspelt_key_is_answered_with_the_closest():
    assert one_line_error(load_config, DEMO, ["SOLVER.BASE_LRR", "0.1"]) == (
        "SOLVER.BASE_LRR: unknown key; did you mean SOLVER.BASE_LR?")


def test_values_are_stored_as_the_config_holds_them():
    cfg = load_config(DEMO, ["SOLVER.BASE_LR", "1", "TEST.SYSU.SHOTS", "[1]",
                             "INPUT.SIZE_TRAIN", "(32, 16)", "SOLVER.CLIP_GRADIENTS.NORM_TYPE",
                             "1e999"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.TEST.SYSU.SHOTS == (1,) and cfg.INPUT.SIZE_TRAIN == [32, 16]
    assert math.isinf(cfg.SOLVER.CLIP_GRADIENTS.NORM_TYPE)  # the max norm


def test_a_value_from_a_file_names_the_file_that_set_it(tmp_path):
    base = tmp_path / "base.yml"
    base.write_text(f"_BASE_: {DEMO}\nSOLVER:\n  BASE_LR: -0.5\n")
    leaf = tmp_path / "leaf.yml"
    leaf.write_text("_BASE_: base.yml\nSOLVER:\n  MOMENTUM: 0.8\n")
    assert one_line_error(load_config, str(leaf)) == (
        f"{base}: SOLVER.BASE_LR -0.5: expected a finite number > 0")


def test_a_cift_model_config_passes():
    cfg = load_config(CIFT, ["MODEL.CIFT.GRAPH", "gft", "MODEL.CIFT.CRI.SHARED", "False"])
    assert cfg.MODEL.META_ARCHITECTURE == "CIFT" and cfg.MODEL.CIFT.GRAPH == "gft"


@pytest.mark.parametrize("key, value, held", [
    ("SOLVER.BASE_LR", 1, 1.0),
    ("TEST.SYSU.SHOTS", [1, 10], (1, 10)),
    ("MODEL.CIFT.TOPK", 8, 8),
    ("MODEL.LOSSES.TRI.MARGIN", 0.3, 0.3),  # an unused key at its default
])
def test_check_value_returns_the_value_as_the_config_holds_it(key, value, held):
    got = check_value(key, value)
    assert got == held and type(got) is type(held)


@pytest.mark.parametrize("key, value", [("TEST.IMS_PER_BATCH", -1), ("MODEL.CIFT.TAU_HOM", 0.0),
                                        ("MODEL.CIFT.TAU_HOM", float("nan")),
                                        ("MODEL.LOSSES.TRI.MARGIN", 0.5)])
def test_check_value_says_what_a_bad_config_value_would(key, value):
    from_config = one_line_error(load_config, DEMO, [key, repr(value)]
                                 ) if not math.isnan(value) else None
    message = one_line_error(check_value, key, value)
    assert message.startswith(f"{key} {value!r}: expected ")
    assert from_config in (None, message)


def test_check_keys_checks_a_config_not_read_by_load_config():
    cfg = load_config(DEMO)
    cfg.defrost()
    cfg.SOLVER.GAMMA = -0.1
    with pytest.raises(CiftInputError, match="SOLVER.GAMMA -0.1: expected a finite number > 0"):
        check_keys(cfg, ["SOLVER.GAMMA"])
    assert cfg.SOLVER.GAMMA == -0.1  # not changed

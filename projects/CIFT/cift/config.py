"""`add_cift_config(cfg)`: the only place where cift adds config keys.

Defaults leave fastreid's behaviour unchanged where a key already exists in fastreid; the
paper recipe lives in `configs/Base-CIFT.yml`.
"""
from __future__ import annotations

import os
import sys

import yaml
from fastreid.config import CfgNode as CN


def add_cift_config(cfg: CN) -> CN:
    """Add the VI-ReID / CIFT keys to a fastreid config in place and return it."""
    _C = cfg

    # Heterogeneous centre contrastive loss (supplementary eq. 6), feature level: Euclidean
    # distance on the pooled backbone features. MARGIN is rho; SCALE multiplies the term.
    _C.MODEL.LOSSES.HCC = CN()
    _C.MODEL.LOSSES.HCC.EUC = CN()
    # rho for the Euclidean level.
    _C.MODEL.LOSSES.HCC.EUC.MARGIN = 0.6
    # weight of HCC_euc(pool) in the total loss (0 disables it).
    _C.MODEL.LOSSES.HCC.EUC.SCALE = 1.0
    # Logit level: symmetric KL between softmax distributions.
    _C.MODEL.LOSSES.HCC.KL = CN()
    # rho for the KL level.
    _C.MODEL.LOSSES.HCC.KL.MARGIN = 6.0
    # weight of HCC_kl(logits) in the total loss (0 disables it).
    _C.MODEL.LOSSES.HCC.KL.SCALE = 1.0

    # CIFT graph module (H2FT, docs/design.md §1). GRAPH: "h2ft" (homogeneous gallery graph and
    # heterogeneous query rows, UBS masks in training) or "gft" (one graph over every node,
    # supplementary §3; the ablation baseline).
    _C.MODEL.CIFT = CN()
    _C.MODEL.CIFT.GRAPH = "h2ft"
    # tau_hom: temperature of the homogeneous (gallery-gallery) affinities exp(cos / tau).
    _C.MODEL.CIFT.TAU_HOM = 0.4
    # tau_het: temperature of the heterogeneous (query-gallery) affinities; GFT uses TAU_HOM.
    _C.MODEL.CIFT.TAU_HET = 0.2
    # k: neighbours kept per row, self included (self + k-1 others).
    _C.MODEL.CIFT.TOPK = 4
    # v in s_ij = cos(v(x_i), v(x_j)): "identity" (the authors' code) or "linear" (a learned
    # d x d projection, one per graph branch).
    _C.MODEL.CIFT.PROJECTION = "identity"
    # Counterfactual relation intervention (CRI): on/off.
    _C.MODEL.CIFT.CRI = CN()
    _C.MODEL.CIFT.CRI.ENABLED = True
    # t: counterfactual samples averaged per iteration.
    _C.MODEL.CIFT.CRI.SAMPLES = 10
    # Loss scales of the graph terms: 1/2 [CE(y_r2i) + CE(y_i2r)] ...
    _C.MODEL.LOSSES.GRAPH_CE = CN()
    _C.MODEL.LOSSES.GRAPH_CE.SCALE = 1.0
    # ... 1/2 [HCC_kl(y_r2i) + HCC_kl(y_i2r)] (margin MODEL.LOSSES.HCC.KL.MARGIN) ...
    _C.MODEL.LOSSES.GRAPH_HCC_KL = CN()
    _C.MODEL.LOSSES.GRAPH_HCC_KL.SCALE = 1.0
    # ... and 1/2 [CE(y_TIE_r2i) + CE(y_TIE_i2r)] on the counterfactual effect.
    _C.MODEL.LOSSES.CRI_CE = CN()
    _C.MODEL.LOSSES.CRI_CE.SCALE = 1.0

    # BNNeck initialisation as in the authors' code: BN weight ~ N(1, STD), bias frozen at 0.
    _C.MODEL.HEADS.BN_INIT_STD = 0.01
    # Classifier (bias-free linear) weight ~ N(0, CLS_INIT_STD).
    _C.MODEL.HEADS.CLS_INIT_STD = 0.001

    # Random erasing (INPUT.REA.*, before normalisation): erased area range, as a fraction of
    # the image.
    _C.INPUT.REA.AREA = (0.02, 0.4)
    # aspect-ratio range of the erased rectangle.
    _C.INPUT.REA.RATIO = (0.3, 3.33)

    # Iterations in one training epoch. 0 = one draw of the cross-modality sampler (the
    # authors' draw: identities consumed in chunks of K images per modality until fewer than P
    # are left; the length varies by epoch); > 0 = this many in every epoch.
    _C.SOLVER.ITERS_PER_EPOCH = 0
    # Warm-up length in epochs (SOLVER.WARMUP_MODE says how); 0 = SOLVER.WARMUP_ITERS
    # iterations of fastreid's per-iteration warm-up ("iteration" mode) or none ("epoch").
    _C.SOLVER.WARMUP_EPOCHS = 0

    # LR schedule (the CIFT trainer): epoch e (1-based) uses BASE_LR x warm-up x GAMMA^(number
    # of SOLVER.STEPS s with e > s), heads x HEADS_LR_FACTOR; the steps fall at exactly the
    # configured epochs. WARMUP_MODE: "epoch" = the authors' e / WARMUP_EPOCHS for
    # e <= WARMUP_EPOCHS, constant within an epoch; "iteration" = fastreid's per-iteration
    # warm-up from WARMUP_FACTOR (WARMUP_METHOD linear / constant / exp).
    _C.SOLVER.WARMUP_MODE = "iteration"

    # Seed of every random generator (weights, sampler, augmentation; rank r uses SEED + r);
    # -1 = a fresh random seed per run (fastreid's behaviour).
    _C.SEED = -1

    # Training metrics (losses, lr, ETA) are printed every LOG_PERIOD iterations (fastreid: 200).
    _C.SOLVER.LOG_PERIOD = 200

    # SYSU-MM01 protocol (docs/design.md §3): number of gallery trials (seeds 0..TRIALS-1).
    _C.TEST.SYSU = CN()
    _C.TEST.SYSU.TRIALS = 10
    # search modes to report: "all" (cams 1,2,4,5) and/or "indoor" (cams 1,2).
    _C.TEST.SYSU.MODES = ("all", "indoor")
    # gallery images per (identity, camera): 1 = single-shot, 10 = multi-shot.
    _C.TEST.SYSU.SHOTS = (1, 10)
    # Test-time transfer (CIFT): "dense" builds the gallery graph densely (the authors' way),
    # "sparse" works from top-(k+1) neighbour lists (memory linear in Q+G), "auto" = sparse
    # when queries + gallery exceed SPARSE_ABOVE images.
    _C.TEST.TRANSFER = CN()
    _C.TEST.TRANSFER.MODE = "auto"
    # size (queries + gallery) above which "auto" goes sparse.
    _C.TEST.TRANSFER.SPARSE_ABOVE = 4096
    # deprecated, use TEST.SEARCH.BACKEND ("" = not set).
    _C.TEST.TRANSFER.BACKEND = ""

    # Top-R retrieval for large galleries. TOP_R 0 ranks each query's whole gallery (exact mAP
    # and mINP). TOP_R R > 0 keeps each query's R nearest gallery images (searched deeper where
    # a CMC rank needs it), so no (queries x gallery) distance matrix is formed: the same
    # R1-R20 (ties aside), AP truncated at R reported as mAP@R, no mINP. Not with TEST.RERANK.
    _C.TEST.RETRIEVAL = CN()
    _C.TEST.RETRIEVAL.TOP_R = 0
    # deprecated, use TEST.SEARCH.BACKEND ("" = not set).
    _C.TEST.RETRIEVAL.BACKEND = ""

    # The neighbour search of the sparse test-time transfer and of the top-R lists: "torch"
    # (blocked matmul + topk, GPU when there is one) or "faiss" (IndexFlatIP, on the GPU when
    # faiss has one). Replaces TEST.TRANSFER.BACKEND and TEST.RETRIEVAL.BACKEND (still read when
    # this key keeps its default; two keys set to different backends are an error).
    _C.TEST.SEARCH = CN()
    _C.TEST.SEARCH.BACKEND = "torch"

    # LLCM protocol: gallery trials (seeds 0..TRIALS-1) per direction.
    _C.TEST.LLCM = CN()
    _C.TEST.LLCM.TRIALS = 10
    # gallery images per (identity, camera) (the reference draws 1).
    _C.TEST.LLCM.SHOTS = 1
    # visible->infrared task: "semantic" (visible queries, infrared gallery drawn per trial) or
    # "reference" (what the public LLCM script reports as "VIS to IR": the drawn infrared images
    # ranked against every visible image; use it to compare with published numbers).
    _C.TEST.LLCM.VIS_TO_IR = "semantic"
    # reported as `metric` (fastreid keeps `model_best` by it): "<task>/<metric>", e.g.
    # "all-single/mAP" (SYSU), "visible-thermal/R1" (RegDB); "" = the first task's mAP.
    _C.TEST.MAIN_METRIC = ""
    # CMC curve (rank 1..20) of every reported setting as <OUTPUT_DIR>/cmc_<test set>.png after
    # each evaluation: True / False.
    _C.TEST.CMC_PLOT = True
    # Topology diagnostics (supplementary §1, docs/topology.md): after each evaluation, Q_X,
    # Q_Y, Q_A and the affinity error rate of every task's test graph, logged as
    # topology/<test set>/<task>/<measure> scalars. ENABLED: on / off.
    _C.TEST.TOPOLOGY = CN()
    _C.TEST.TOPOLOGY.ENABLED = False
    # queries per task the measures use (evenly spread; the first trial's gallery); 0 = all.
    _C.TEST.TOPOLOGY.MAX_QUERIES = 500
    # tasks measured, e.g. ("all-single",); empty = every task of each test set.
    _C.TEST.TOPOLOGY.TASKS = ()

    # RegDB: which of the 10 published train/test splits (idx/*_{split}.txt) a run uses, 1..10.
    _C.DATASETS.REGDB = CN()
    _C.DATASETS.REGDB.SPLIT = 1
    # deprecated name of DATASETS.REGDB.SPLIT ("trial" is a gallery draw, TEST.*.TRIALS);
    # 0 = not set. See RENAMED_KEYS.
    _C.DATASETS.REGDB.TRIAL = 0

    # Synthetic VI data set (the embedded default): generator parameters; the data set is
    # written to $FASTREID_DATASETS/SyntheticVI on first use.
    _C.DATASETS.SYNTHETIC = CN()
    # number of identities (train + val + test).
    _C.DATASETS.SYNTHETIC.NUM_IDS = 60
    # images per (identity, camera); multi-shot SYSU galleries need at least 10.
    _C.DATASETS.SYNTHETIC.IMAGES_PER_CAMERA = 12
    # identities held out for testing (the query/gallery identities).
    _C.DATASETS.SYNTHETIC.TEST_IDS = 20
    # validation identities (trained on, like SYSU-MM01's val ids).
    _C.DATASETS.SYNTHETIC.VAL_IDS = 8
    # generator seed.
    _C.DATASETS.SYNTHETIC.SEED = 0

    # The authors' recipe details: transforms, CRI sharing, CMC variant.
    # Resize interpolation of the train and test transforms: "bilinear" (torchvision's default,
    # the authors' code) or "bicubic" (fastreid's transforms).
    _C.INPUT.INTERPOLATION = "bilinear"
    # Random erasing: rectangles tried per image before giving up (the authors: 100;
    # torchvision's RandomErasing: 10).
    _C.INPUT.REA.ATTEMPTS = 100
    # distribution of the erased rectangle's aspect ratio h/w over INPUT.REA.RATIO: "uniform"
    # (the authors' code) or "log-uniform" (torchvision's RandomErasing).
    _C.INPUT.REA.RATIO_SAMPLING = "uniform"
    # CRI: True = one set of counterfactual node parameters (c: B x 1, k: B x d) serves both
    # graph branches r2i and i2r (the authors' single module); False = one set per branch.
    _C.MODEL.CIFT.CRI.SHARED = True
    # CMC of the SYSU-MM01 and LLCM protocols: "identity" (a gallery identity counts once, at
    # its best rank: AGW/DEEN, the community's tables) or "image" (every gallery image counts:
    # the CIFT authors' eval()). RegDB's protocol is image-level either way. R1, mAP, mINP are
    # the same under both.
    _C.TEST.CMC_MODE = "identity"

    # Reliability. Decode every image of the splits a run reads before anything is written
    # (results cached per file in the data set folder, so reruns cost nothing): True / False.
    _C.DATALOADER.CHECK_IMAGES = True
    # Seconds a collective may wait for the other processes before the job stops, naming the
    # rank that went silent; 0 = 300 with gloo (CPU), 1800 with NCCL (torch's default).
    _C.DIST_TIMEOUT_S = 0
    return cfg


# Renamed keys: old name -> (new name, the old key's "not set" value). A set old key still
# works when the new one keeps its default (one deprecation line); both set apart is an error.
RENAMED_KEYS = {"DATASETS.REGDB.TRIAL": ("DATASETS.REGDB.SPLIT", 0)}


def _get(cfg: CN, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def renamed_key_value(cfg: CN, old: str):
    """The value of RENAMED_KEYS[old]'s new key, taking a set `old` key into account.

    Raises:
        CiftInputError: both keys set, to different values.
    """
    from fastreid.config import get_cfg

    from .errors import CiftInputError

    new, unset = RENAMED_KEYS[old]
    old_value, new_value = _get(cfg, old), _get(cfg, new)
    if old_value == unset:
        return new_value
    default = _get(add_cift_config(get_cfg()), new)
    if new_value not in (default, old_value):
        raise CiftInputError(f"{old} {old_value!r} and {new} {new_value!r}: {old} is the old "
                             f"name of {new}; set only {new}")
    return old_value


def _apply_renamed_keys(cfg: CN) -> None:
    """Move the values of set old keys to their new keys (unfrozen cfg), one deprecation line
    on stderr for each."""
    for old, (new, unset) in RENAMED_KEYS.items():
        if _get(cfg, old) == unset:
            continue
        value = renamed_key_value(cfg, old)
        print(f"deprecated: {old} is now {new}; using {new} {value!r}", file=sys.stderr)
        *path, last = new.split(".")
        _get(cfg, ".".join(path))[last] = value
        *path, last = old.split(".")
        _get(cfg, ".".join(path))[last] = unset


def load_config(config_file: str = "", opts: list[str] | None = None) -> CN:
    """fastreid defaults + cift keys + a YAML file + `KEY VALUE` overrides, frozen.

    An unknown key, a missing file or a malformed value raises CiftInputError naming it.
    """
    from fastreid.config import get_cfg

    from .errors import CiftInputError

    cfg = add_cift_config(get_cfg())
    if config_file:
        if not os.path.isfile(config_file):
            raise CiftInputError(f"{config_file}: config file not found")
        try:
            cfg.merge_from_file(config_file)
        except (KeyError, ValueError, AssertionError, TypeError) as err:
            raise CiftInputError(f"{config_file}: {_one_line(err)}") from None
        except yaml.YAMLError as err:  # the file or one of its _BASE_ files
            raise CiftInputError(f"{config_file}: not valid YAML: {_yaml_problem(err)}") from None
        except OSError as err:  # a _BASE_ file that cannot be read
            raise CiftInputError(f"{config_file}: {err}") from None
    try:
        cfg.merge_from_list(list(opts or []))
    except (KeyError, ValueError, AssertionError, TypeError) as err:
        raise CiftInputError(f"command-line options: {_one_line(err)}") from None
    _apply_renamed_keys(cfg)
    cfg.freeze()
    return cfg


def _yaml_problem(err: BaseException) -> str:
    """'<file> line L column C: <problem>' of a YAML parser error."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or _one_line(err)
    if mark is None:
        return problem
    return f"{mark.name} line {mark.line + 1} column {mark.column + 1}: {problem}"


def _one_line(err: BaseException) -> str:
    text = str(err.args[0]) if err.args else repr(err)
    return " ".join(text.split())


# TEMP until the schema lands: the constraints of the config keys a command-line flag stands
# for (engineer A's schema checks every key at load and provides check_value for them all).
_FLAG_KEYS = {
    "MODEL.CIFT.GRAPH": ("one of ('h2ft', 'gft')", lambda v: v in ("h2ft", "gft")),
    "MODEL.CIFT.TAU_HOM": ("a finite number > 0", lambda v: _is_positive_number(v)),
    "MODEL.CIFT.TAU_HET": ("a finite number > 0", lambda v: _is_positive_number(v)),
    "MODEL.CIFT.TOPK": ("an int >= 1",
                        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
}


def _is_positive_number(value) -> bool:
    import math

    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def check_value(key: str, value):
    """`value`, checked against the constraint of config key `key`; raises CiftInputError
    ("<KEY> <value!r>: expected ...") as a bad value of that key in a config would."""
    from .errors import CiftInputError

    expected, ok = _FLAG_KEYS[key]
    if not ok(value):
        raise CiftInputError(f"{key} {value!r}: expected {expected}")
    return value

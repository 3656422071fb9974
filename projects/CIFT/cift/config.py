"""cift's config keys, each with its default, comment and constraint; `add_cift_config(cfg)`
adds them to a fastreid config, `load_config` reads and checks a whole config.

Defaults leave fastreid's behaviour unchanged where a key already exists in fastreid; the paper
recipe lives in `configs/Base-CIFT.yml`. fastreid's keys are constrained in
:mod:`cift.config_fastreid`; the kinds of constraint are in :mod:`cift.config_schema`.
"""
from __future__ import annotations

from fastreid.config import CfgNode as CN

from .config_fastreid import FASTREID_KEYS
from .config_schema import (
    Bool,
    Choice,
    Float,
    Int,
    Key,
    Mismatch,
    Seq,
    Str,
    check_rules,
    checked_value,
    get_key,
    imported,
)
from .errors import CiftInputError

__all__ = ["CIFT_KEYS", "GRAPHS", "PROJECTIONS", "REPLACED_KEYS", "SCHEMA", "add_cift_config",
           "check_keys", "check_value", "keys_set", "load_config"]

# MODEL.CIFT.GRAPH: "h2ft" (homogeneous gallery graph, heterogeneous query rows) or "gft".
GRAPHS = ("h2ft", "gft")
# MODEL.CIFT.PROJECTION: v in s_ij = cos(v(x_i), v(x_j)).
PROJECTIONS = ("identity", "linear")
POSITIVE = Float(0.0, low_open=True)
SCALE = Float(0.0)  # a loss weight; 0 disables the term


def positive_ids_left(value, cfg) -> str | None:
    """DATASETS.SYNTHETIC.NUM_IDS leaves training identities after the test and val ones."""
    s = cfg.DATASETS.SYNTHETIC
    held_out = s.TEST_IDS + s.VAL_IDS
    if value <= held_out:
        return (f"more than DATASETS.SYNTHETIC.TEST_IDS + VAL_IDS ({s.TEST_IDS} + {s.VAL_IDS}): "
                "the rest are the training identities")
    return None


def top_r_without_rerank(value, cfg) -> str | None:
    if value and cfg.TEST.RERANK.ENABLED:
        return ("0 with TEST.RERANK.ENABLED True (re-ranking needs the whole distance matrix; "
                "set TOP_R 0 or disable RERANK)")
    return None


MODEL_KEYS = {
    # CIFT graph module (H2FT, docs/design.md §1): "h2ft" (homogeneous gallery graph and
    # heterogeneous query rows, UBS masks in training) or "gft" (one graph over every node,
    # supplementary §3; the ablation baseline).
    "MODEL.CIFT.GRAPH": Key("h2ft", Choice(GRAPHS)),
    # tau_hom: temperature of the homogeneous (gallery-gallery) affinities exp(cos / tau).
    "MODEL.CIFT.TAU_HOM": Key(0.4, POSITIVE),
    # tau_het: temperature of the heterogeneous (query-gallery) affinities; GFT uses TAU_HOM.
    "MODEL.CIFT.TAU_HET": Key(0.2, POSITIVE),
    # k: neighbours kept per row, self included (self + k-1 others); at most the graph's nodes
    # in a per-process batch, checked with the world size.
    "MODEL.CIFT.TOPK": Key(4, Int(1)),
    # v in s_ij = cos(v(x_i), v(x_j)): "identity" (the authors' code) or "linear" (a learned
    # d x d projection, one per graph branch).
    "MODEL.CIFT.PROJECTION": Key("identity", Choice(PROJECTIONS)),
    # Counterfactual relation intervention (CRI): on / off.
    "MODEL.CIFT.CRI.ENABLED": Key(True, Bool()),
    # t: counterfactual samples averaged per iteration.
    "MODEL.CIFT.CRI.SAMPLES": Key(10, Int(1)),
    # True = one set of counterfactual node parameters (c: B x 1, k: B x d) serves both graph
    # branches r2i and i2r (the authors' single module); False = one set per branch.
    "MODEL.CIFT.CRI.SHARED": Key(True, Bool()),
    # Heterogeneous centre contrastive loss (supplementary eq. 6) on the pooled backbone
    # features, Euclidean level: rho.
    "MODEL.LOSSES.HCC.EUC.MARGIN": Key(0.6, Float(0.0)),
    # weight of HCC_euc(pool) in the total loss (0 disables it).
    "MODEL.LOSSES.HCC.EUC.SCALE": Key(1.0, SCALE),
    # HCC at the logit level (symmetric KL between softmax distributions): rho.
    "MODEL.LOSSES.HCC.KL.MARGIN": Key(6.0, Float(0.0)),
    # weight of HCC_kl(logits) in the total loss (0 disables it).
    "MODEL.LOSSES.HCC.KL.SCALE": Key(1.0, SCALE),
    # weight of 1/2 [CE(y_r2i) + CE(y_i2r)], the graph branches' classification.
    "MODEL.LOSSES.GRAPH_CE.SCALE": Key(1.0, SCALE),
    # weight of 1/2 [HCC_kl(y_r2i) + HCC_kl(y_i2r)] (margin MODEL.LOSSES.HCC.KL.MARGIN).
    "MODEL.LOSSES.GRAPH_HCC_KL.SCALE": Key(1.0, SCALE),
    # weight of 1/2 [CE(y_TIE_r2i) + CE(y_TIE_i2r)], on the counterfactual effect.
    "MODEL.LOSSES.CRI_CE.SCALE": Key(1.0, SCALE),
    # BNNeck initialisation as in the authors' code: BN weight ~ N(1, STD), bias frozen at 0.
    "MODEL.HEADS.BN_INIT_STD": Key(0.01, Float(0.0)),
    # Classifier (bias-free linear) weight ~ N(0, CLS_INIT_STD).
    "MODEL.HEADS.CLS_INIT_STD": Key(0.001, Float(0.0)),
}

INPUT_KEYS = {
    # Resize interpolation of the train and test transforms: "bilinear" (torchvision's default,
    # the authors' code) or "bicubic" (fastreid's transforms).
    "INPUT.INTERPOLATION": Key("bilinear", Choice(imported("cift.data.transforms",
                                                           "INTERPOLATIONS"))),
    # Random erasing (before normalisation; INPUT.REA.ENABLED, PROB, VALUE are fastreid's):
    # range of the erased area, as a fraction of the image.
    "INPUT.REA.AREA": Key((0.02, 0.4), Seq(Float(0.0, 1.0, low_open=True), length=2,
                                           order="<=")),
    # range of the erased rectangle's aspect ratio h / w.
    "INPUT.REA.RATIO": Key((0.3, 3.33), Seq(POSITIVE, length=2, order="<=")),
    # how the aspect ratio is drawn over RATIO: "uniform" (the authors' code) or "log-uniform"
    # (torchvision's RandomErasing).
    "INPUT.REA.RATIO_SAMPLING": Key("uniform", Choice(imported("cift.data.transforms",
                                                               "RATIO_SAMPLINGS"))),
    # rectangles tried per image before giving up (the authors: 100; torchvision: 10).
    "INPUT.REA.ATTEMPTS": Key(100, Int(1)),
}

DATA_KEYS = {
    # RegDB: which of the 10 published train/test splits (idx/*_{split}.txt) a run uses.
    "DATASETS.REGDB.SPLIT": Key(1, Int(1, 10)),
    # Synthetic VI data set (the embedded default), written to $FASTREID_DATASETS/SyntheticVI on
    # first use: identities in all (train + val + test).
    "DATASETS.SYNTHETIC.NUM_IDS": Key(60, Int(2), positive_ids_left),
    # images per (identity, camera); multi-shot SYSU galleries need at least 10.
    "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA": Key(12, Int(1)),
    # identities held out for testing (the query/gallery identities).
    "DATASETS.SYNTHETIC.TEST_IDS": Key(20, Int(1)),
    # validation identities (trained on, like SYSU-MM01's val ids).
    "DATASETS.SYNTHETIC.VAL_IDS": Key(8, Int(0)),
    # generator seed.
    "DATASETS.SYNTHETIC.SEED": Key(0, Int(0)),
    # Decode every image of the splits a run reads before anything is written (results cached
    # per file in the data set folder, so reruns cost nothing): True / False.
    "DATALOADER.CHECK_IMAGES": Key(True, Bool()),
}

SOLVER_KEYS = {
    # Iterations in one training epoch. 0 = one draw of the cross-modality sampler (the
    # authors' draw: identities consumed in chunks of K images per modality until fewer than P
    # are left; the length varies by epoch); > 0 = this many in every epoch.
    "SOLVER.ITERS_PER_EPOCH": Key(0, Int(0)),
    # LR schedule (the CIFT trainer): epoch e (1-based) uses BASE_LR x warm-up x GAMMA^(number
    # of SOLVER.STEPS s with e > s), heads x HEADS_LR_FACTOR. Warm-up length in epochs; 0 =
    # SOLVER.WARMUP_ITERS iterations of fastreid's warm-up ("iteration" mode) or none ("epoch").
    "SOLVER.WARMUP_EPOCHS": Key(0, Int(0)),
    # "epoch" = the authors' e / WARMUP_EPOCHS for e <= WARMUP_EPOCHS, constant within an
    # epoch; "iteration" = fastreid's per-iteration warm-up from WARMUP_FACTOR (WARMUP_METHOD).
    "SOLVER.WARMUP_MODE": Key("iteration", Choice(imported("cift.engine.schedule",
                                                           "WARMUP_MODES"))),
    # Training metrics (losses, lr, ETA) are printed every LOG_PERIOD iterations (fastreid: 200).
    "SOLVER.LOG_PERIOD": Key(200, Int(1)),
    # Seed of every random generator (weights, sampler, augmentation; rank r uses SEED + r);
    # -1 = a fresh random seed per run (fastreid's behaviour).
    "SEED": Key(-1, Int(-1, 2**31 - 1)),
    # Seconds a collective may wait for the other processes before the job stops, naming the
    # rank that went silent; 0 = 300 with gloo (CPU), 1800 with NCCL (torch's default).
    "DIST_TIMEOUT_S": Key(0.0, Float(0.0, 1e9)),
}

TEST_KEYS = {
    # SYSU-MM01 protocol (docs/design.md §3): number of gallery trials (seeds 0..TRIALS-1).
    "TEST.SYSU.TRIALS": Key(10, Int(1)),
    # search modes to report: "all" (cams 1,2,4,5) and/or "indoor" (cams 1,2).
    "TEST.SYSU.MODES": Key(("all", "indoor"), Seq(
        Choice(imported("cift.evaluation.galleries", "SYSU_CAMERAS")), min_length=1,
        distinct=True)),
    # gallery images per (identity, camera): 1 = single-shot, 10 = multi-shot.
    "TEST.SYSU.SHOTS": Key((1, 10), Seq(Int(1), min_length=1, distinct=True)),
    # LLCM protocol: gallery trials (seeds 0..TRIALS-1) per direction.
    "TEST.LLCM.TRIALS": Key(10, Int(1)),
    # gallery images per (identity, camera) (the reference draws 1).
    "TEST.LLCM.SHOTS": Key(1, Int(1)),
    # visible->infrared task: "semantic" (visible queries, infrared gallery drawn per trial) or
    # "reference" (what the public LLCM script reports as "VIS to IR": the drawn infrared images
    # ranked against every visible image; use it to compare with published numbers).
    "TEST.LLCM.VIS_TO_IR": Key("semantic", Choice(("semantic", "reference"))),
    # CMC of the SYSU-MM01 and LLCM protocols: "identity" (a gallery identity counts once, at
    # its best rank: AGW/DEEN, the community's tables) or "image" (every gallery image counts:
    # the CIFT authors' eval()). RegDB's is image-level either way; R1, mAP, mINP agree.
    "TEST.CMC_MODE": Key("identity", Choice(imported("cift.evaluation.metrics", "CMC_MODES"))),
    # Test-time transfer (CIFT): "dense" builds the gallery graph densely (the authors' way),
    # "sparse" works from top-(k+1) neighbour lists (memory linear in Q+G), "auto" = sparse
    # when queries + gallery exceed SPARSE_ABOVE images.
    "TEST.TRANSFER.MODE": Key("auto", Choice(imported("cift.search_settings",
                                                      "TRANSFER_MODES"))),
    # size (queries + gallery) above which "auto" goes sparse; 0 = always: the neighbour lists
    # were faster at every graph size of the protocols on the CPU (bench/features_tool.py).
    "TEST.TRANSFER.SPARSE_ABOVE": Key(0, Int(0)),
    # The neighbour search of the sparse test-time transfer and of the top-R lists: "torch"
    # (blocked matmul + topk, GPU when there is one) or "faiss" (IndexFlatIP, on the GPU when
    # faiss has one).
    "TEST.SEARCH.BACKEND": Key("torch", Choice(imported("cift.neighbours", "SEARCH_BACKENDS"))),
    # Top-R retrieval for large galleries. 0 ranks each query's whole gallery (exact mAP and
    # mINP). R > 0 keeps each query's R nearest gallery images (searched deeper where a CMC rank
    # needs it), so no (queries x gallery) distance matrix is formed: the same R1-R20 (ties
    # aside), AP truncated at R reported as mAP@R, no mINP. Not with TEST.RERANK.
    "TEST.RETRIEVAL.TOP_R": Key(0, Int(0), top_r_without_rerank),
    # reported as `metric` (fastreid keeps `model_best` by it): "<task>/<metric>", e.g.
    # "all-single/mAP" (SYSU), "visible-thermal/R1" (RegDB); "" = the first task's mAP.
    "TEST.MAIN_METRIC": Key("", Str()),
    # CMC curve (rank 1..20) of every reported setting as <OUTPUT_DIR>/cmc_<test set>.png after
    # each evaluation: True / False.
    "TEST.CMC_PLOT": Key(True, Bool()),
    # After each evaluation, write features_<test set>.npz to the run's output folder (format
    # in docs/features.md): True / False.
    "TEST.SAVE_FEATURES": Key(False, Bool()),
    # Topology diagnostics (supplementary §1, docs/topology.md): after each evaluation, Q_X,
    # Q_Y, Q_A and the affinity error rate of every task's test graph, logged as
    # topology/<test set>/<task>/<measure> scalars: on / off.
    "TEST.TOPOLOGY.ENABLED": Key(False, Bool()),
    # queries per task the measures use (evenly spread; the first trial's gallery); 0 = all.
    "TEST.TOPOLOGY.MAX_QUERIES": Key(500, Int(0)),
    # tasks measured, e.g. ("all-single",); empty = every task of each test set.
    "TEST.TOPOLOGY.TASKS": Key((), Seq(Str(), distinct=True)),
}

CIFT_KEYS = {**MODEL_KEYS, **INPUT_KEYS, **DATA_KEYS, **SOLVER_KEYS, **TEST_KEYS}
# Every key a run reads: fastreid's and cift's.
SCHEMA = {**FASTREID_KEYS, **CIFT_KEYS}
# Keys removed from earlier versions -> the key that replaced them (named by the unknown-key
# error).
REPLACED_KEYS = {"DATASETS.REGDB.TRIAL": "DATASETS.REGDB.SPLIT",
                 "TEST.TRANSFER.BACKEND": "TEST.SEARCH.BACKEND",
                 "TEST.RETRIEVAL.BACKEND": "TEST.SEARCH.BACKEND"}


def add_cift_config(cfg: CN) -> CN:
    """Add cift's keys (`CIFT_KEYS`) with their defaults to a fastreid config in place and
    return it."""
    for key, entry in CIFT_KEYS.items():
        *path, last = key.split(".")
        node = cfg
        for part in path:
            if part not in node:
                node[part] = CN()
            node = node[part]
        node[last] = entry.default
    return cfg


def default_config() -> CN:
    """fastreid's defaults with cift's keys."""
    from fastreid.config import get_cfg

    return add_cift_config(get_cfg())


def check_value(key: str, value):
    """`value` for config key `key` (a command-line flag that stands for it), checked as a
    config value would be (its kind; relations to other keys need the whole config) and
    returned as the config holds it.

    Raises:
        CiftInputError: "<KEY> <value!r>: expected <what>".
    """
    try:
        return checked_value(key, value, SCHEMA[key], get_key(default_config(), key))
    except Mismatch as err:
        raise CiftInputError(f"{key} {value!r}: expected {err}") from None


def check_keys(cfg, keys) -> None:
    """Check `keys` of a config (not necessarily read by `load_config`) against the schema, as
    `load_config` checks them; the config is not changed.

    Raises:
        CiftInputError: the first value that does not fit.
    """
    check_rules(cfg.clone(), {key: SCHEMA[key] for key in keys}, default_config(), {})


def keys_set(config_file: str = "", opts: list[str] | None = None) -> dict[str, str]:
    """{key: where it was set} for every key the config file (with its _BASE_ chain) or the
    KEY VALUE options set: the file's path, or "" for an option."""
    from .config_files import merge_config

    return merge_config(default_config(), config_file, opts, REPLACED_KEYS)


def load_config(config_file: str = "", opts: list[str] | None = None) -> CN:
    """fastreid defaults + cift keys + a YAML file + `KEY VALUE` overrides, checked against
    `SCHEMA` and frozen.

    Raises:
        CiftInputError: one line naming the file, key or value: an unknown key (with its
            replacement when it was renamed), a file that cannot be read as a mapping of keys,
            or a value its key does not allow.
    """
    from .config_files import merge_config

    cfg = default_config()
    origins = merge_config(cfg, config_file, opts, REPLACED_KEYS)
    check_rules(cfg, SCHEMA, default_config(), origins)
    cfg.freeze()
    return cfg

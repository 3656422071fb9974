"""Constraints of fastreid's config keys (their defaults live in `fastreid.config.defaults`), as
cift's runs read them; cift's own keys are declared in :mod:`cift.config`.

Supported components: the meta-architectures VIBaseline and CIFT (and registered subclasses of
VIBaseline), BNNeckHead (and its subclasses), the torchvision and fastreid ResNets, the VI-ReID
data sets (registered with a `protocol`). fastreid's own `Baseline` runs through the CIFT trainer
but is not supported: its heads (EmbeddingHead) and losses (LOSSES.NAME: triplet, circle,
cosface) are outside the VI-ReID recipe and their keys are not checked; MGN, MoCo and Distiller
need keys and code paths (part heads, a feature queue, teacher models) that cift does not
provide. Keys only those read are `Unused`: set to anything but fastreid's default, they stop
the run with one line, rather than doing nothing.
"""
from __future__ import annotations

from .config_schema import (
    Bool,
    Choice,
    Float,
    Int,
    Kind,
    Pattern,
    Rule,
    Seq,
    Str,
    Unused,
    imported,
    probability,
)

__all__ = ["FASTREID_KEYS", "RESNET_CHANNELS"]

# MODEL.BACKBONE.DEPTH -> output channels of both ResNets (MODEL.BACKBONE.FEAT_DIM).
RESNET_CHANNELS = {"18x": 512, "34x": 512, "50x": 2048, "101x": 2048}
RESNETS = ("build_torchvision_resnet_backbone", "build_resnet_backbone")
# fastreid.layers.get_norm's names
NORMS = ("BN", "syncBN", "GhostBN", "FrozenBN", "GN")
# fastreid's build_optimizer passes momentum / nesterov to SGD only; other torch optimizers get
# the parameter groups (lr, weight_decay). Those two are the ones fastreid and cift run.
OPTIMIZERS = ("SGD", "Adam", "AdamW")


def _subclasses_of(registry_module: str, registry: str, module: str, base: str) -> tuple:
    """Registered names of `registry` whose object is a subclass of `module.base`."""
    import importlib

    from .fastreid_private import registered_names

    reg = getattr(importlib.import_module(registry_module), registry)
    cls = getattr(importlib.import_module(module), base)
    return tuple(n for n in registered_names(reg)
                 if isinstance(reg.get(n), type) and issubclass(reg.get(n), cls))


def meta_architectures() -> tuple:
    return _subclasses_of("fastreid.modeling.meta_arch", "META_ARCH_REGISTRY",
                          "cift.modeling.meta_arch.cift", "VIBaseline")


def heads() -> tuple:
    return _subclasses_of("fastreid.modeling.heads", "REID_HEADS_REGISTRY",
                          "cift.modeling.meta_arch.cift", "BNNeckHead")


def vi_datasets() -> tuple:
    """Registered data sets with an evaluation protocol (fastreid's own have none)."""
    from fastreid.data.datasets import DATASET_REGISTRY

    from .fastreid_private import registered_names

    return tuple(n for n in registered_names(DATASET_REGISTRY)
                 if getattr(DATASET_REGISTRY.get(n), "protocol", None))


class Device(Kind):
    """cpu, cuda or cuda:N (whether a GPU is visible is checked with the job's inputs)."""

    what = "cpu or cuda[:N]"

    def fits(self, value) -> bool:
        import torch

        try:
            return isinstance(value, str) and torch.device(value).type in ("cpu", "cuda")
        except RuntimeError:
            return False


def feat_dim_of_depth(value, cfg) -> str | None:
    want = RESNET_CHANNELS[cfg.MODEL.BACKBONE.DEPTH]
    if value != want:
        return f"{want}, the output channels of MODEL.BACKBONE.DEPTH {cfg.MODEL.BACKBONE.DEPTH}"
    return None


def fastreid_resnet_only(value, cfg) -> str | None:
    if value and cfg.MODEL.BACKBONE.NAME != "build_resnet_backbone":
        return (f"False with MODEL.BACKBONE.NAME {cfg.MODEL.BACKBONE.NAME} (no such blocks; "
                "build_resnet_backbone has them)")
    return None


def steps_within_epochs(value, cfg) -> str | None:
    if value and value[-1] > cfg.SOLVER.MAX_EPOCH:
        return f"ascending epochs in 1..SOLVER.MAX_EPOCH ({cfg.SOLVER.MAX_EPOCH})"
    return None


def nesterov_needs_momentum(value, cfg) -> str | None:
    if value and cfg.SOLVER.OPT == "SGD" and cfg.SOLVER.MOMENTUM <= 0:
        return f"False with SOLVER.MOMENTUM {cfg.SOLVER.MOMENTUM} (Nesterov needs momentum > 0)"
    return None


def freeze_needs_layers(value, cfg) -> str | None:
    if value > 0 and not cfg.MODEL.FREEZE_LAYERS:
        return "0 while MODEL.FREEZE_LAYERS is empty (nothing to freeze)"
    return None


def set_weight_for_sampler(value, cfg) -> str | None:
    if cfg.DATALOADER.SAMPLER_TRAIN == "SetReWeightSampler" and not sum(value):
        return "one weight > 0 per camera set with DATALOADER.SAMPLER_TRAIN SetReWeightSampler"
    return None


def fastreid_baseline_only(what: str) -> Unused:
    return Unused(f"read by fastreid's Baseline / EmbeddingHead only: {what}")


VIT = Unused("fastreid's ViT backbone only")
LOSS = fastreid_baseline_only("VIBaseline and CIFT train with CE + HCC")
LOSS_NAMES = Unused("read by fastreid's Baseline only: VIBaseline and CIFT train with CE + HCC",
                    "MODEL.LOSSES.CE.SCALE and MODEL.LOSSES.HCC.*.SCALE (0 disables a term)")
HEAD = fastreid_baseline_only("BNNeckHead is a BNNeck and a bias-free linear classifier on "
                              "average-pooled features")
AUGMENT = Unused("fastreid's transforms only; cift's train transforms are resize, pad, crop, "
                 "flip, random erasing")
CROP = Unused("fastreid's transforms only",
              "INPUT.PADDING.* (pad, then crop back to INPUT.SIZE_TRAIN)")
COSINE = Unused("fastreid's cosine schedule only; the CIFT trainer runs SOLVER.SCHED MultiStepLR",
                "SOLVER.STEPS and SOLVER.GAMMA")
KD = Unused("fastreid's Distiller only")

FASTREID_KEYS = {
    "MODEL.DEVICE": Device(),
    "MODEL.META_ARCHITECTURE": Choice(meta_architectures,
                                      "fastreid's Baseline, MGN, MoCo, Distiller: not supported"),
    # patterns over the model's top-level modules (backbone, heads; CIFT adds cri, projections)
    # frozen for SOLVER.FREEZE_ITERS iterations
    "MODEL.FREEZE_LAYERS": Seq(Pattern()),
    "MODEL.QUEUE_SIZE": Unused("fastreid's MoCo only"),
    "MODEL.BACKBONE.NAME": Choice(RESNETS),
    "MODEL.BACKBONE.DEPTH": Choice(tuple(RESNET_CHANNELS)),
    "MODEL.BACKBONE.LAST_STRIDE": Choice((1, 2)),
    "MODEL.BACKBONE.FEAT_DIM": Rule(Int(1), feat_dim_of_depth),
    "MODEL.BACKBONE.NORM": Choice(NORMS),
    "MODEL.BACKBONE.WITH_IBN": Rule(Bool(), fastreid_resnet_only),
    "MODEL.BACKBONE.WITH_SE": Rule(Bool(), fastreid_resnet_only),
    "MODEL.BACKBONE.WITH_NL": Rule(Bool(), fastreid_resnet_only),
    "MODEL.BACKBONE.SIE_COE": VIT,
    "MODEL.BACKBONE.STRIDE_SIZE": VIT,
    "MODEL.BACKBONE.DROP_PATH_RATIO": VIT,
    "MODEL.BACKBONE.DROP_RATIO": VIT,
    "MODEL.BACKBONE.ATT_DROP_RATE": VIT,
    "MODEL.BACKBONE.PRETRAIN": Bool(),
    # '' = torchvision's file in the hub cache (cift.modeling.backbone); the file itself is
    # checked with the job's inputs
    "MODEL.BACKBONE.PRETRAIN_PATH": Str(),
    "MODEL.HEADS.NAME": Choice(heads),
    "MODEL.HEADS.NORM": Unused("EmbeddingHead only; BNNeckHead's neck is BatchNorm1d"),
    # 0 = the number of training identities
    "MODEL.HEADS.NUM_CLASSES": Int(0),
    "MODEL.HEADS.EMBEDDING_DIM": HEAD,
    "MODEL.HEADS.WITH_BNNECK": HEAD,
    "MODEL.HEADS.NECK_FEAT": HEAD,
    "MODEL.HEADS.POOL_LAYER": HEAD,
    "MODEL.HEADS.CLS_LAYER": HEAD,
    "MODEL.HEADS.MARGIN": HEAD,
    "MODEL.HEADS.SCALE": HEAD,
    "MODEL.LOSSES.NAME": LOSS_NAMES,
    "MODEL.LOSSES.CE.EPSILON": LOSS,
    "MODEL.LOSSES.CE.ALPHA": LOSS,
    "MODEL.LOSSES.CE.SCALE": Float(0.0),
    "MODEL.LOSSES.FL.ALPHA": LOSS,
    "MODEL.LOSSES.FL.GAMMA": LOSS,
    "MODEL.LOSSES.FL.SCALE": LOSS,
    "MODEL.LOSSES.TRI.MARGIN": LOSS,
    "MODEL.LOSSES.TRI.NORM_FEAT": LOSS,
    "MODEL.LOSSES.TRI.HARD_MINING": LOSS,
    "MODEL.LOSSES.TRI.SCALE": LOSS,
    "MODEL.LOSSES.CIRCLE.MARGIN": LOSS,
    "MODEL.LOSSES.CIRCLE.GAMMA": LOSS,
    "MODEL.LOSSES.CIRCLE.SCALE": LOSS,
    "MODEL.LOSSES.COSFACE.MARGIN": LOSS,
    "MODEL.LOSSES.COSFACE.GAMMA": LOSS,
    "MODEL.LOSSES.COSFACE.SCALE": LOSS,
    # checkpoint to start from or evaluate ('' = none); read with the job's inputs
    "MODEL.WEIGHTS": Str(),
    # per RGB channel, on the 0-255 scale the loader yields
    "MODEL.PIXEL_MEAN": Seq(Float(), length=3),
    "MODEL.PIXEL_STD": Seq(Float(0.0, low_open=True), length=3),
    "KD.MODEL_CONFIG": KD,
    "KD.MODEL_WEIGHTS": KD,
    "KD.EMA.ENABLED": KD,
    "KD.EMA.MOMENTUM": KD,
    # (height, width) of the resized images
    "INPUT.SIZE_TRAIN": Seq(Int(1), length=2),
    "INPUT.SIZE_TEST": Seq(Int(1), length=2),
    "INPUT.CROP.ENABLED": CROP,
    "INPUT.CROP.SIZE": CROP,
    "INPUT.CROP.SCALE": CROP,
    "INPUT.CROP.RATIO": CROP,
    "INPUT.FLIP.ENABLED": Bool(),
    "INPUT.FLIP.PROB": probability(),
    "INPUT.PADDING.ENABLED": Bool(),
    # torchvision's Pad modes
    "INPUT.PADDING.MODE": Choice(("constant", "edge", "reflect", "symmetric")),
    "INPUT.PADDING.SIZE": Int(0),
    "INPUT.CJ.ENABLED": AUGMENT,
    "INPUT.CJ.PROB": AUGMENT,
    "INPUT.CJ.BRIGHTNESS": AUGMENT,
    "INPUT.CJ.CONTRAST": AUGMENT,
    "INPUT.CJ.SATURATION": AUGMENT,
    "INPUT.CJ.HUE": AUGMENT,
    "INPUT.AFFINE.ENABLED": AUGMENT,
    "INPUT.AUTOAUG.ENABLED": AUGMENT,
    "INPUT.AUTOAUG.PROB": AUGMENT,
    "INPUT.AUGMIX.ENABLED": AUGMENT,
    "INPUT.AUGMIX.PROB": AUGMENT,
    "INPUT.REA.ENABLED": Bool(),
    "INPUT.REA.PROB": probability(),
    # fill per RGB channel, on the 0-255 scale (erasing runs before normalisation)
    "INPUT.REA.VALUE": Seq(Float(), length=3),
    "INPUT.RPT.ENABLED": AUGMENT,
    "INPUT.RPT.PROB": AUGMENT,
    "DATASETS.NAMES": Seq(Choice(vi_datasets, "registered VI-ReID data sets")),
    "DATASETS.TESTS": Seq(Choice(vi_datasets, "registered VI-ReID data sets"), min_length=1),
    "DATASETS.COMBINEALL": Unused("fastreid's train loader only; cift's trains on the train "
                                  "split of each data set", "DATASETS.NAMES"),
    "DATALOADER.SAMPLER_TRAIN": Choice(imported("cift.data.build", "TRAIN_SAMPLERS")),
    # K: images per identity (per modality with CrossModalityIdentitySampler)
    "DATALOADER.NUM_INSTANCE": Int(1),
    "DATALOADER.NUM_WORKERS": Int(0),
    # SetReWeightSampler's weight per camera set
    "DATALOADER.SET_WEIGHT": Rule(Seq(Int(0)), set_weight_for_sampler),
    "SOLVER.AMP.ENABLED": Bool(),
    "SOLVER.OPT": Choice(OPTIMIZERS),
    "SOLVER.MAX_EPOCH": Int(1),
    "SOLVER.BASE_LR": Float(0.0, low_open=True),
    "SOLVER.HEADS_LR_FACTOR": Float(0.0),
    # SGD only
    "SOLVER.MOMENTUM": Float(0.0, 1.0, high_open=True),
    "SOLVER.NESTEROV": Rule(Bool(), nesterov_needs_momentum),
    "SOLVER.WEIGHT_DECAY": Float(0.0),
    "SOLVER.WEIGHT_DECAY_NORM": Float(0.0),
    "SOLVER.BIAS_LR_FACTOR": Float(0.0),
    "SOLVER.WEIGHT_DECAY_BIAS": Float(0.0),
    "SOLVER.SCHED": Choice(imported("cift.engine.schedule", "SCHEDULES"),
                           "the CIFT trainer runs the multi-step schedule per epoch"),
    "SOLVER.DELAY_EPOCHS": COSINE,
    "SOLVER.GAMMA": Float(0.0, low_open=True),
    # epochs after which the LR is multiplied by GAMMA
    "SOLVER.STEPS": Rule(Seq(Int(1), order="<"), steps_within_epochs),
    "SOLVER.ETA_MIN_LR": COSINE,
    # fastreid's per-iteration warm-up (SOLVER.WARMUP_MODE iteration): the LR rises from
    # WARMUP_FACTOR x BASE_LR over WARMUP_ITERS iterations (when SOLVER.WARMUP_EPOCHS is 0)
    "SOLVER.WARMUP_FACTOR": probability(),
    "SOLVER.WARMUP_ITERS": Int(0),
    "SOLVER.WARMUP_METHOD": Choice(imported("cift.engine.schedule", "WARMUP_METHODS")),
    "SOLVER.FREEZE_ITERS": Rule(Int(0), freeze_needs_layers),
    # in epochs
    "SOLVER.CHECKPOINT_PERIOD": Int(1),
    # over all processes; split evenly between them
    "SOLVER.IMS_PER_BATCH": Int(1),
    "SOLVER.CLIP_GRADIENTS.ENABLED": Bool(),
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": Choice(("norm", "value")),
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": Float(0.0, low_open=True),
    # p of the L-p norm; .inf in YAML for the max norm
    "SOLVER.CLIP_GRADIENTS.NORM_TYPE": Float(0.0, low_open=True, finite=False),
    # in epochs; an evaluation also follows the last epoch
    "TEST.EVAL_PERIOD": Int(1),
    "TEST.IMS_PER_BATCH": Int(1),
    "TEST.METRIC": Choice(("cosine",), "the VI-ReID evaluator ranks by cosine similarity"),
    "TEST.ROC.ENABLED": Unused("fastreid's ReidEvaluator only"),
    "TEST.FLIP.ENABLED": Bool(),
    "TEST.AQE.ENABLED": Unused("fastreid's ReidEvaluator only"),
    "TEST.AQE.ALPHA": Unused("fastreid's ReidEvaluator only"),
    "TEST.AQE.QE_TIME": Unused("fastreid's ReidEvaluator only"),
    "TEST.AQE.QE_K": Unused("fastreid's ReidEvaluator only"),
    "TEST.RERANK.ENABLED": Bool(),
    # k-reciprocal re-ranking: k1, k2 neighbours and the weight of the original distance
    "TEST.RERANK.K1": Int(1),
    "TEST.RERANK.K2": Int(1),
    "TEST.RERANK.LAMBDA": probability(),
    "TEST.PRECISE_BN.ENABLED": Unused("fastreid's precise-BN hook, which the CIFT trainer does "
                                      "not support"),
    "TEST.PRECISE_BN.DATASET": Unused("fastreid's precise-BN hook only"),
    "TEST.PRECISE_BN.NUM_ITER": Unused("fastreid's precise-BN hook only"),
    # '' = nothing written (the log goes to the console only)
    "OUTPUT_DIR": Str(),
    "CUDNN_BENCHMARK": Bool(),
}

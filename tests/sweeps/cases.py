"""The bad-input sweep's cases (issue 18): every example the issue names, then the variants a new
user would try on each part of the config and of the commands' flags.

A case runs one command in its own folder. train_net cases are the demo config (or the CIFT
one) + TINY + OUTPUT_DIR {out} + the case's options; tool cases give their whole command line,
"@TINY" standing for the TINY overrides. Placeholders: {out} (the watched output), {tmp} (the
case's folder), {demo} / {cift} (the demo configs), {data} (FASTREID_DATASETS), the
sweep's prepared files ({run}, {weights}, {early}, {nan_ckpt}, {nomatch_st}, {regdb},
{search_query}, {search_gallery}) and what the case's builder adds.

expect: "refuse" (one error line, nothing written), "accept" (a valid unusual input: exit 0) or
"either" (a refusal as above, or a complete run: both are sound answers). `names`: what the
error line must name, each entry a string or a tuple of alternatives (case-insensitive).
"""
from __future__ import annotations

from dataclasses import dataclass

import builders as b


@dataclass
class Case:
    id: str
    group: str
    expect: str
    program: str = "train_net"  # or search, export, regdb, compare, visualize
    config: str | None = "{demo}"  # train_net: --config-file (None: no such flag)
    flags: tuple = ()  # train_net: flags before the options
    opts: tuple = ()  # train_net: options after TINY and OUTPUT_DIR; tools: the whole argv
    tiny: bool = True
    names: tuple = ()
    build: b.Builder | None = None
    runner: str = "plain"  # plain, sigterm, sigint, two_runs, fsize
    writes_ok: bool = False  # files in OUTPUT_DIR are expected (interruptions)
    needs: tuple = ()  # prepared files: "run", "derived", "regdb", "search"
    watch: str = "{out}"
    max_len: int = 1000  # a longer error line is not a one-line message (a dump)
    timeout: int = 420
    env: tuple = ()  # (NAME, value) pairs, placeholders allowed

    def default_names(self) -> None:
        """A config option's key is what its error must name (unless the case says more)."""
        if self.names or self.expect == "accept" or self.program != "train_net":
            return
        keys = [o for o in self.opts[::2] if isinstance(o, str) and o[:1].isupper()
                and o != "OUTPUT_DIR"]
        if keys:
            self.names = (keys[-1],)


def opt(id: str, group: str, *opts: str, expect: str = "refuse", **kw) -> Case:
    """A train_net case: the demo (TINY) plus `opts`."""
    return Case(id, group, expect, opts=opts, **kw)


def cift(id: str, group: str, *opts: str, expect: str = "refuse", **kw) -> Case:
    """A train_net case on the CIFT demo."""
    return Case(id, group, expect, config="{cift}", opts=opts, **kw)


def yaml_case(id: str, group: str, body: str, expect: str = "refuse", names=(), **kw) -> Case:
    """A train_net case whose config file is the demo plus `body` (for values the command
    line cannot spell: YAML's .nan, .inf, null)."""
    return Case(id, group, expect, config="{yaml}", build=b.yaml_on_demo(body), names=names,
                **kw)


SYSU = ("DATASETS.NAMES", "('SYSUMM01',)", "DATASETS.TESTS", "('SYSUMM01',)")
REGDB = ("DATASETS.NAMES", "('RegDB',)", "DATASETS.TESTS", "('RegDB',)")
EVAL = ("--eval-only",)

SEARCH = ("--config-file", "{demo}", "@TINY", "MODEL.WEIGHTS", "{weights}", "--query",
          "{search_query}", "--query-modality", "infrared", "--gallery", "{search_gallery}",
          "--gallery-modality", "visible", "--output", "{out}")
SEARCH_COPY = ("--config-file", "{demo}", "@TINY", "MODEL.WEIGHTS", "{weights}", "--query",
               "{query}", "--query-modality", "infrared", "--gallery", "{gallery}",
               "--gallery-modality", "visible", "--output", "{out}")
EXPORT = ("--config-file", "{demo}", "--output", "{out}", "@TINY")
REGDB_TRIALS = ("--config-file", "{demo}", "--splits", "1")
VISUALIZE = ("--out", "{out}/grid.png", "--model", "demo", "{demo}", "{weights}")


def search(id: str, expect: str, *extra: str, base=SEARCH, **kw) -> Case:
    return Case(f"search-{id}", kw.pop("group", "search.py"), expect, program="search",
                opts=(*base, *extra), needs=("run", "search", *kw.pop("needs", ())), **kw)


def export(id: str, expect: str, *extra: str, weights: str = "{weights}", **kw) -> Case:
    weights_opts = ("MODEL.WEIGHTS", weights) if weights else ()
    return Case(f"export-{id}", "export_model.py", expect, program="export",
                opts=(*EXPORT, *weights_opts, *extra), needs=("run", *kw.pop("needs", ())),
                **kw)


def regdb(id: str, expect: str, *argv: str, **kw) -> Case:
    return Case(f"regdb-trials-{id}", "run_regdb_trials.py", expect, program="regdb", opts=argv,
                watch=kw.pop("watch", "{out}"), **kw)


def compare(id: str, expect: str, *argv: str, **kw) -> Case:
    return Case(f"compare-{id}", "compare_runs.py", expect, program="compare", opts=argv, **kw)


def visualize(id: str, expect: str, *extra: str, tail=("@TINY",), **kw) -> Case:
    return Case(f"visualize-{id}", "visualize_affinity.py", expect, program="visualize",
                opts=(*VISUALIZE, *extra, *tail), needs=("run", *kw.pop("needs", ())),
                build=b.make_out, **kw)


ISSUE = [
    # --- accepted silently (the issue's first list)
    opt("base-lr-negative", "issue: silent", "SOLVER.BASE_LR", "-0.01"),
    opt("weight-decay-negative", "issue: silent", "SOLVER.WEIGHT_DECAY", "-0.1"),
    opt("ce-scale-negative", "issue: silent", "MODEL.LOSSES.CE.SCALE", "-1.0"),
    opt("max-epoch-0", "issue: silent", "SOLVER.MAX_EPOCH", "0"),
    opt("max-epoch-negative", "issue: silent", "SOLVER.MAX_EPOCH", "-1"),
    opt("eval-period-negative", "issue: silent", "TEST.EVAL_PERIOD", "-1"),
    opt("checkpoint-period-negative", "issue: silent", "SOLVER.CHECKPOINT_PERIOD", "-1"),
    opt("log-period-0", "issue: silent", "SOLVER.LOG_PERIOD", "0"),
    opt("rea-prob-2", "issue: silent", "INPUT.REA.PROB", "2.0"),
    opt("size-train-one-number", "issue: silent", "INPUT.SIZE_TRAIN", "[32]"),
    Case("num-gpus-0", "issue: silent", "refuse", flags=("--num-gpus", "0"),
         names=("--num-gpus",)),
    Case("num-gpus-negative", "issue: silent", "refuse", flags=("--num-gpus", "-2"),
         names=("--num-gpus",)),
    opt("sysu-train-test-ids-overlap", "issue: silent", *SYSU, build=b.sysu_copy(b.overlap_ids),
        names=(("test_id", "overlap", "both", "train and test"),)),
    opt("sysu-listed-id-empty-folders", "issue: silent", *SYSU,
        build=b.sysu_copy(b.empty_id_folders), names=(("identity", "empty", "no image"),)),
    Case("eval-nan-weights", "issue: silent", "refuse", flags=EVAL,
         opts=("MODEL.WEIGHTS", "{nan_ckpt}"), needs=("run", "derived"),
         names=("weights_x", ("nan", "finite"))),
    opt("train-from-safetensors-no-matching-key", "issue: silent", "MODEL.WEIGHTS",
        "{nomatch_st}", needs=("run", "derived"), names=("renamed.safetensors",)),
    # --- traceback after writing
    opt("checkpoint-period-0", "issue: traceback after writing", "SOLVER.CHECKPOINT_PERIOD", "0"),
    opt("size-train-zero", "issue: traceback after writing", "INPUT.SIZE_TRAIN", "[0, 0]"),
    opt("size-test-zero", "issue: traceback after writing", "INPUT.SIZE_TEST", "[32, 0]"),
    opt("iters-per-epoch-negative", "issue: traceback after writing", "SOLVER.ITERS_PER_EPOCH",
        "-5"),
    opt("test-batch-0", "issue: traceback after writing", "TEST.IMS_PER_BATCH", "0"),
    opt("num-workers-negative", "issue: traceback after writing", "DATALOADER.NUM_WORKERS", "-1"),
    opt("momentum-negative", "issue: traceback after writing", "SOLVER.MOMENTUM", "-1.0"),
    opt("optimizer-lion", "issue: traceback after writing", "SOLVER.OPT", "Lion"),
    opt("steps-string", "issue: traceback after writing", "SOLVER.STEPS", "['a']"),
    opt("feat-dim-100", "issue: traceback after writing", "MODEL.BACKBONE.FEAT_DIM", "100"),
    opt("base-lr-1e999", "issue: traceback after writing", "SOLVER.BASE_LR", "1e999"),
    opt("pixel-std-zero", "issue: traceback after writing", "MODEL.PIXEL_STD", "[0.0, 0.0, 0.0]"),
    Case("resume-other-depth", "issue: traceback after writing", "refuse", flags=("--resume",),
         opts=("OUTPUT_DIR", "{run_copy}", "MODEL.BACKBONE.DEPTH", "34x"),
         build=b.unfinished_run, needs=("run",), watch="{run_copy}",
         names=(("DEPTH", "model_0000", "checkpoint", "does not fit"),)),
    opt("gallery-decompression-bomb-unchecked", "issue: traceback after writing", *SYSU,
        "DATALOADER.CHECK_IMAGES", "False", build=b.sysu_copy(b.gallery_bomb),
        names=("9999.png",)),
    search("non-utf8-file-names", "either", base=SEARCH_COPY,
           build=b.search_copy(b.non_utf8_names), group="issue: traceback after writing"),
    # --- traceback before writing
    Case("yaml-is-a-list", "issue: traceback before writing", "refuse", config="{file}",
         build=b.write_file("list.yml", "- SOLVER\n- MAX_EPOCH\n"), names=("list.yml",)),
    Case("base-names-itself", "issue: traceback before writing", "refuse", config="{yaml}",
         build=b.base_self, names=("self.yml",)),
    Case("base-cycle", "issue: traceback before writing", "refuse", config="{yaml}",
         build=b.base_cycle, names=(("a.yml", "b.yml"),)),
    opt("train-id-file-non-utf8", "issue: traceback before writing", *SYSU,
        build=b.sysu_copy(b.non_utf8_train_ids), names=("train_id.txt",)),
    opt("regdb-index-non-utf8", "issue: traceback before writing", *REGDB,
        build=b.regdb_copy(b.non_utf8_regdb_index), needs=("regdb",),
        names=("train_visible_1.txt",)),
    opt("output-dir-is-a-file", "issue: traceback before writing", "OUTPUT_DIR", "{file}",
        build=b.a_file, watch="{file}", names=("a_file",)),
    opt("output-dir-not-writable", "issue: traceback before writing", "OUTPUT_DIR", "{ro}",
        build=b.read_only_dir, watch="{ro}", names=("read_only",)),
    opt("output-dir-under-read-only", "issue: traceback before writing", "OUTPUT_DIR",
        "{ro}/run", build=b.read_only_dir, watch="{ro}", names=("read_only",)),
    Case("no-config-file", "issue: traceback before writing", "refuse", config=None, tiny=False,
         opts=("OUTPUT_DIR", "{out}"), names=("--config-file",)),
    search("batch-size-negative", "refuse", "--batch-size", "-1", names=("--batch-size",),
           group="issue: traceback before writing"),
    search("output-is-a-file", "refuse", "--output", "{file}", build=b.a_file,
           watch="{file}", names=(("--output", "a_file"),),
           group="issue: traceback before writing"),
    # --- cryptic one-liners
    Case("yaml-empty", "issue: cryptic", "refuse", config="{file}",
         build=b.write_file("blank.yml", ""),
         names=("blank.yml", ("empty", "no settings", "no keys", "nothing"))),
    Case("yaml-not-utf8", "issue: cryptic", "refuse", config="{file}",
         build=b.write_file("latin1.yml", b"SOLVER:\n  MAX_EPOCH: 2  # \xe9t\xe9\n"),
         names=("latin1.yml", ("byte", "decod", "encod", "not utf-8", "not valid utf-8",
                               "non-utf-8"))),
    yaml_case("node-set-to-a-number", "issue: cryptic", "SOLVER: 3\n", names=("SOLVER",),
              max_len=300),
    # --- interruptions
    opt("sigterm-mid-run", "issue: interruptions", *b.LONG, runner="sigterm", writes_ok=True,
        names=(("SIGTERM", "signal", "terminat", "interrupt", "stopp"),)),
    opt("sigint-mid-run", "issue: interruptions", *b.LONG, runner="sigint", writes_ok=True,
        names=(("SIGINT", "signal", "interrupt", "stopp"),)),
    opt("two-runs-one-output-dir", "issue: interruptions", *b.LONG, runner="two_runs",
        writes_ok=True, names=(("pid", "in use", "another", "lock", "running"),)),
    opt("checkpoint-write-file-size-limit", "issue: interruptions", runner="fsize",
        writes_ok=True, names=((".pth", "checkpoint", "model_"),)),
]

MODEL = [
    opt("depth-unknown", "MODEL", "MODEL.BACKBONE.DEPTH", "19x"),
    opt("depth-number", "MODEL", "MODEL.BACKBONE.DEPTH", "50"),
    opt("feat-dim-0", "MODEL", "MODEL.BACKBONE.FEAT_DIM", "0"),
    opt("feat-dim-negative", "MODEL", "MODEL.BACKBONE.FEAT_DIM", "-512"),
    opt("last-stride-0", "MODEL", "MODEL.BACKBONE.LAST_STRIDE", "0"),
    opt("norm-unknown", "MODEL", "MODEL.BACKBONE.NORM", "GroupNormX"),
    opt("pretrain-string", "MODEL", "MODEL.BACKBONE.PRETRAIN", "maybe"),
    opt("num-classes-negative", "MODEL", "MODEL.HEADS.NUM_CLASSES", "-1"),
    opt("num-classes-fewer-than-ids", "MODEL", "MODEL.HEADS.NUM_CLASSES", "3"),
    opt("bn-init-std-negative", "MODEL", "MODEL.HEADS.BN_INIT_STD", "-0.01"),
    opt("cls-init-std-inf", "MODEL", "MODEL.HEADS.CLS_INIT_STD", "1e999"),
    opt("hcc-euc-margin-negative", "MODEL", "MODEL.LOSSES.HCC.EUC.MARGIN", "-1.0"),
    yaml_case("hcc-kl-scale-nan", "MODEL", "MODEL:\n  LOSSES:\n    HCC:\n      KL:\n"
              "        SCALE: .nan\n", names=("SCALE",)),
    opt("pixel-mean-two-values", "MODEL", "MODEL.PIXEL_MEAN", "[1.0, 2.0]"),
    opt("pixel-std-negative", "MODEL", "MODEL.PIXEL_STD", "[-1.0, 1.0, 1.0]"),
    opt("meta-architecture-empty", "MODEL", "MODEL.META_ARCHITECTURE", ""),
    opt("device-absent-gpu", "MODEL", "MODEL.DEVICE", "cuda:1"),
    opt("device-cpu", "MODEL", "MODEL.DEVICE", "cpu", expect="accept"),
    opt("weights-a-folder", "MODEL", "MODEL.WEIGHTS", "{tmp}"),
    opt("weights-empty-file", "MODEL", "MODEL.WEIGHTS", "{file}",
        build=b.write_file("empty.pth", b""), names=("empty.pth",)),
    opt("weights-text-file", "MODEL", "MODEL.WEIGHTS", "{file}",
        build=b.write_file("notes.pth", "my weights\n"),
        names=("notes.pth", ("not a checkpoint", "not a readable", "corrupt", "truncated",
                             "not a torch", "not a pytorch"))),
    opt("train-from-nan-weights", "MODEL", "MODEL.WEIGHTS", "{nan_ckpt}",
        needs=("run", "derived"), names=("weights_x", ("nan", "finite"))),
    cift("cift-tau-hom-string", "MODEL", "MODEL.CIFT.TAU_HOM", "warm"),
    cift("cift-topk-float", "MODEL", "MODEL.CIFT.TOPK", "2.5"),
    cift("cift-cri-samples-string", "MODEL", "MODEL.CIFT.CRI.SAMPLES", "ten"),
    cift("cift-cri-enabled-int", "MODEL", "MODEL.CIFT.CRI.ENABLED", "1"),
    cift("cift-graph-ce-scale-negative", "MODEL", "MODEL.LOSSES.GRAPH_CE.SCALE", "-1.0"),
    cift("cift-demo", "MODEL", expect="accept"),
    cift("cift-gft", "MODEL", "MODEL.CIFT.GRAPH", "gft", expect="accept"),
    cift("cift-linear-projection", "MODEL", "MODEL.CIFT.PROJECTION", "linear", expect="accept"),
    cift("cift-sparse-transfer", "MODEL", "TEST.TRANSFER.MODE", "sparse", expect="accept"),
    opt("hcc-off", "MODEL", "MODEL.LOSSES.HCC.EUC.SCALE", "0.0", "MODEL.LOSSES.HCC.KL.SCALE",
        "0.0", expect="accept"),
]

INPUT = [
    opt("size-train-three-numbers", "INPUT", "INPUT.SIZE_TRAIN", "[32, 16, 8]"),
    opt("size-train-negative", "INPUT", "INPUT.SIZE_TRAIN", "[-32, 16]"),
    opt("size-train-floats", "INPUT", "INPUT.SIZE_TRAIN", "[32.5, 16.0]"),
    opt("size-train-word", "INPUT", "INPUT.SIZE_TRAIN", "big"),
    opt("size-test-empty", "INPUT", "INPUT.SIZE_TEST", "[]"),
    opt("size-test-one-number", "INPUT", "INPUT.SIZE_TEST", "[32]"),
    opt("flip-prob-negative", "INPUT", "INPUT.FLIP.PROB", "-0.5"),
    yaml_case("flip-prob-nan", "INPUT", "INPUT:\n  FLIP:\n    PROB: .nan\n",
              names=("FLIP.PROB",)),
    opt("padding-negative", "INPUT", "INPUT.PADDING.SIZE", "-4"),
    opt("padding-mode-unknown", "INPUT", "INPUT.PADDING.MODE", "mirror"),
    opt("rea-area-reversed", "INPUT", "INPUT.REA.AREA", "[0.4, 0.02]"),
    opt("rea-ratio-zero", "INPUT", "INPUT.REA.RATIO", "[0.0, 3.0]"),
    opt("rea-value-two-numbers", "INPUT", "INPUT.REA.VALUE", "[1.0, 2.0]"),
    opt("rea-prob-negative", "INPUT", "INPUT.REA.PROB", "-0.1"),
    opt("interpolation-capitalised", "INPUT", "INPUT.INTERPOLATION", "Bilinear"),
    opt("small-images", "INPUT", "INPUT.SIZE_TRAIN", "[16, 8]", "INPUT.SIZE_TEST", "[16, 8]",
        expect="accept"),
    opt("rea-off", "INPUT", "INPUT.REA.ENABLED", "False", expect="accept"),
    opt("rea-prob-1", "INPUT", "INPUT.REA.PROB", "1.0", expect="accept"),
]

DATALOADER = [
    opt("num-workers-word", "DATALOADER", "DATALOADER.NUM_WORKERS", "two"),
    opt("num-instance-1000", "DATALOADER", "DATALOADER.NUM_INSTANCE", "1000",
        names=(("NUM_INSTANCE", "IMS_PER_BATCH"),)),
    opt("sampler-empty", "DATALOADER", "DATALOADER.SAMPLER_TRAIN", ""),
    opt("check-images-word", "DATALOADER", "DATALOADER.CHECK_IMAGES", "yes"),
    opt("one-worker", "DATALOADER", "DATALOADER.NUM_WORKERS", "1", expect="accept"),
    opt("image-check-off", "DATALOADER", "DATALOADER.CHECK_IMAGES", "False", expect="accept"),
]

SOLVER = [
    opt("base-lr-0", "SOLVER", "SOLVER.BASE_LR", "0.0"),
    yaml_case("base-lr-nan", "SOLVER", "SOLVER:\n  BASE_LR: .nan\n", names=("BASE_LR",)),
    opt("base-lr-word", "SOLVER", "SOLVER.BASE_LR", "fast"),
    opt("gamma-negative", "SOLVER", "SOLVER.GAMMA", "-1.0"),
    opt("gamma-0", "SOLVER", "SOLVER.GAMMA", "0.0"),
    opt("steps-descending", "SOLVER", "SOLVER.STEPS", "[2, 1]"),
    opt("steps-negative", "SOLVER", "SOLVER.STEPS", "[-1]"),
    opt("steps-beyond-max-epoch", "SOLVER", "SOLVER.STEPS", "[100]"),
    opt("warmup-epochs-negative", "SOLVER", "SOLVER.WARMUP_EPOCHS", "-1"),
    opt("warmup-factor-negative", "SOLVER", "SOLVER.WARMUP_FACTOR", "-0.1"),
    opt("warmup-iters-negative", "SOLVER", "SOLVER.WARMUP_EPOCHS", "0", "SOLVER.WARMUP_ITERS",
        "-10"),
    opt("warmup-method-unknown", "SOLVER", "SOLVER.WARMUP_METHOD", "cosine"),
    opt("heads-lr-factor-negative", "SOLVER", "SOLVER.HEADS_LR_FACTOR", "-10.0"),
    opt("momentum-above-1", "SOLVER", "SOLVER.MOMENTUM", "1.5"),
    opt("nesterov-without-momentum", "SOLVER", "SOLVER.MOMENTUM", "0.0",
        names=(("MOMENTUM", "NESTEROV"),)),
    opt("weight-decay-norm-negative", "SOLVER", "SOLVER.WEIGHT_DECAY_NORM", "-1.0"),
    opt("batch-float", "SOLVER", "SOLVER.IMS_PER_BATCH", "16.0"),
    opt("max-epoch-word", "SOLVER", "SOLVER.MAX_EPOCH", "two"),
    opt("log-period-negative", "SOLVER", "SOLVER.LOG_PERIOD", "-1"),
    opt("sched-empty", "SOLVER", "SOLVER.SCHED", ""),
    opt("one-sampler-draw-per-epoch", "SOLVER", "SOLVER.ITERS_PER_EPOCH", "0", expect="accept"),
    opt("checkpoint-period-past-the-end", "SOLVER", "SOLVER.CHECKPOINT_PERIOD", "100",
        expect="accept"),
    opt("tiny-lr", "SOLVER", "SOLVER.BASE_LR", "1e-6", expect="accept"),
    opt("no-steps", "SOLVER", "SOLVER.STEPS", "[]", expect="accept"),
    opt("epoch-warmup", "SOLVER", "SOLVER.WARMUP_MODE", "epoch", expect="accept"),
]

TEST = [
    opt("test-batch-negative", "TEST", "TEST.IMS_PER_BATCH", "-1"),
    opt("sysu-trials-negative", "TEST", "TEST.SYSU.TRIALS", "-3"),
    opt("sysu-shots-float", "TEST", "TEST.SYSU.SHOTS", "(1.5,)"),
    opt("sysu-modes-word", "TEST", "TEST.SYSU.MODES", "all"),
    opt("rerank-k1-negative", "TEST", "TEST.RERANK.ENABLED", "True", "TEST.RERANK.K1", "-1"),
    opt("rerank-lambda-2", "TEST", "TEST.RERANK.ENABLED", "True", "TEST.RERANK.LAMBDA", "2.0"),
    opt("topology-max-queries-negative", "TEST", "TEST.TOPOLOGY.ENABLED", "True",
        "TEST.TOPOLOGY.MAX_QUERIES", "-1"),
    opt("topology-unknown-task", "TEST", "TEST.TOPOLOGY.ENABLED", "True", "TEST.TOPOLOGY.TASKS",
        "('outdoor-single',)"),
    cift("sparse-above-negative", "TEST", "TEST.TRANSFER.SPARSE_ABOVE", "-1"),
    opt("cmc-plot-word", "TEST", "TEST.CMC_PLOT", "yes"),
    opt("llcm-shots-negative", "TEST", "TEST.LLCM.SHOTS", "-2"),
    opt("test-batch-1", "TEST", "TEST.IMS_PER_BATCH", "1", expect="accept"),
    opt("eval-period-past-the-end", "TEST", "TEST.EVAL_PERIOD", "100", expect="accept"),
    opt("rerank", "TEST", "TEST.RERANK.ENABLED", "True", expect="accept"),
    opt("topology", "TEST", "TEST.TOPOLOGY.ENABLED", "True", expect="accept"),
    opt("top-r", "TEST", "TEST.RETRIEVAL.TOP_R", "5", expect="accept"),
    opt("main-metric-r1", "TEST", "TEST.MAIN_METRIC", "all-single/R1", expect="accept"),
    opt("test-flip", "TEST", "TEST.FLIP.ENABLED", "True", expect="accept"),
]

DATASETS = [
    opt("names-a-string", "DATASETS", "DATASETS.NAMES", "SyntheticVI"),
    opt("names-lowercase", "DATASETS", "DATASETS.NAMES", "('syntheticvi',)",
        names=("syntheticvi",)),
    opt("synthetic-one-id", "DATASETS", "DATASETS.SYNTHETIC.NUM_IDS", "1"),
    opt("synthetic-test-ids-over-ids", "DATASETS", "DATASETS.SYNTHETIC.TEST_IDS", "20"),
    opt("synthetic-seed-negative", "DATASETS", "DATASETS.SYNTHETIC.SEED", "-1"),
    opt("synthetic-no-images", "DATASETS", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "0"),
    opt("regdb-split-11", "DATASETS", *REGDB, "DATASETS.REGDB.SPLIT", "11",
        build=b.regdb_copy(), needs=("regdb",)),
    opt("regdb-split-0", "DATASETS", *REGDB, "DATASETS.REGDB.SPLIT", "0",
        build=b.regdb_copy(), needs=("regdb",)),
    opt("datasets-root-missing", "DATASETS", *SYSU, env=(("FASTREID_DATASETS", "{tmp}/nowhere"),),
        names=("nowhere",)),
    opt("datasets-root-a-file", "DATASETS", *SYSU, build=b.a_file,
        env=(("FASTREID_DATASETS", "{file}"),), names=("a_file",)),
    opt("sysu-copy", "DATASETS", *SYSU, build=b.sysu_copy(), expect="accept"),
    opt("regdb-tiny", "DATASETS", *REGDB, build=b.regdb_copy(), needs=("regdb",),
        expect="accept"),
    opt("synthetic-first-use", "DATASETS", env=(("FASTREID_DATASETS", "{tmp}/fresh"),),
        expect="accept", timeout=600),
]

TOP_LEVEL = [
    opt("seed-below-minus-1", "top-level keys", "SEED", "-2"),
    opt("seed-float", "top-level keys", "SEED", "1.5"),
    opt("cudnn-benchmark-word", "top-level keys", "CUDNN_BENCHMARK", "no"),
    yaml_case("dist-timeout-nan", "top-level keys", "DIST_TIMEOUT_S: .nan\n",
              names=("DIST_TIMEOUT_S",)),
    opt("unknown-key", "top-level keys", "SOLVER.BASE_LRATE", "0.01"),
    opt("lowercase-key", "top-level keys", "solver.base_lr", "0.01", names=("solver.base_lr",)),
    opt("node-as-option", "top-level keys", "SOLVER", "3", max_len=300),
    opt("random-seed", "top-level keys", "SEED", "-1", expect="accept"),
    opt("output-dir-spaces-unicode", "top-level keys", "OUTPUT_DIR", "{tmp}/my runs/été 1",
        watch="{tmp}/my runs", expect="accept"),
    opt("output-dir-relative", "top-level keys", "OUTPUT_DIR", "logs/rel", watch="{tmp}/logs",
        expect="accept"),
]

CONFIG_FILE = [
    Case("config-missing", "config file", "refuse", config="{tmp}/nope.yml", names=("nope.yml",)),
    Case("config-a-folder", "config file", "refuse", config="{tmp}",
         names=(("--config-file", "{tmp}"),)),
    Case("yaml-a-scalar", "config file", "refuse", config="{file}",
         build=b.write_file("scalar.yml", "hello\n"), names=("scalar.yml",)),
    Case("base-a-list", "config file", "refuse", config="{file}",
         build=b.write_file("base_list.yml", "_BASE_: [a.yml, b.yml]\n"),
         names=("base_list.yml",)),
    yaml_case("yaml-value-word", "config file", "SOLVER:\n  BASE_LR: fast\n", names=("BASE_LR",)),
    yaml_case("yaml-value-null", "config file", "SOLVER:\n  BASE_LR:\n", names=("BASE_LR",)),
    yaml_case("yaml-unknown-key", "config file", "SOLVER:\n  BASE_LRATE: 0.1\n",
              names=("BASE_LRATE",)),
    Case("config-path-spaces-unicode", "config file", "accept", config="{file}",
         build=b.write_file("my configs/réglage é.yml", "_BASE_: {demo}\n")),
    Case("yaml-utf8-bom", "config file", "accept", config="{file}",
         build=b.write_file("bom.yml", "\ufeff_BASE_: {demo}\n")),
    Case("yaml-crlf", "config file", "accept", config="{file}",
         build=b.write_file("crlf.yml", "_BASE_: {demo}\r\nSOLVER:\r\n  BASE_LR: 0.01\r\n")),
]

TRAIN_NET_CLI = [
    Case("num-machines-0", "train_net flags", "refuse", flags=("--num-machines", "0"),
         names=("--num-machines",)),
    Case("machine-rank-out-of-range", "train_net flags", "refuse", flags=("--machine-rank", "3"),
         names=("--machine-rank",)),
    Case("dist-url-garbage", "train_net flags", "refuse",
         flags=("--num-gpus", "2", "--dist-url", "garbage"), names=("--dist-url",)),
    Case("num-gpus-word", "train_net flags", "refuse", flags=("--num-gpus", "two"),
         names=("--num-gpus",)),
    Case("unknown-flag", "train_net flags", "refuse", flags=("--fast",), names=("--fast",)),
    Case("resume-missing-checkpoint", "train_net flags", "refuse", flags=("--resume",),
         opts=("OUTPUT_DIR", "{run_copy}"), needs=("run",), watch="{run_copy}",
         build=b.unfinished_run_without_checkpoint,
         names=(("model_0000", "last_checkpoint"),)),
    Case("resume-as-cift", "train_net flags", "refuse", flags=("--resume",),
         opts=("OUTPUT_DIR", "{run_copy}", "MODEL.META_ARCHITECTURE", "CIFT"),
         build=b.unfinished_run, needs=("run",), watch="{run_copy}",
         names=(("CIFT", "model_0000", "checkpoint", "does not fit"),)),
    Case("resume-with-nothing-to-resume", "train_net flags", "accept", flags=("--resume",)),
    Case("resume-finished-run", "train_net flags", "accept", flags=("--resume",),
         opts=("OUTPUT_DIR", "{run_copy}"), build=b.finished_run, needs=("run",),
         watch="{run_copy}"),
    Case("eval-only", "train_net flags", "accept", flags=EVAL,
         opts=("MODEL.WEIGHTS", "{weights}"), needs=("run",)),
    Case("eval-only-no-output-dir", "train_net flags", "accept", flags=EVAL,
         opts=("MODEL.WEIGHTS", "{weights}", "OUTPUT_DIR", ""), needs=("run",)),
]

SEARCH_CASES = [
    search("valid", "accept"),
    search("topk-0", "refuse", "--topk", "0", names=("--topk",)),
    search("topk-negative", "refuse", "--topk", "-5", names=("--topk",)),
    search("topk-past-the-gallery", "accept", "--topk", "1000"),
    search("batch-of-one", "accept", "--batch-size", "1"),
    search("query-missing", "refuse", "--query", "{tmp}/nope", names=("nope",)),
    search("gallery-without-images", "refuse", base=SEARCH_COPY,
           build=b.search_copy(b.empty_gallery), names=("gallery",)),
    search("text-file-named-jpg", "accept", base=SEARCH_COPY,
           build=b.search_copy(b.text_as_image)),
    search("modality-thermal", "refuse", "--query-modality", "thermal",
           names=("--query-modality",)),
    search("weights-missing", "refuse", "MODEL.WEIGHTS", "{tmp}/nope.pth", names=("nope.pth",)),
    search("nan-weights", "refuse", "MODEL.WEIGHTS", "{nan_ckpt}", needs=("derived",),
           names=("weights_x", ("nan", "finite"))),
    search("bad-config-value", "refuse", "SOLVER.BASE_LR", "-0.01", names=("SOLVER.BASE_LR",)),
    search("test-batch-0", "refuse", "TEST.IMS_PER_BATCH", "0", names=("TEST.IMS_PER_BATCH",)),
]

EXPORT_CASES = [
    export("valid", "accept"),
    export("no-weights", "refuse", weights="", names=("MODEL.WEIGHTS",)),
    export("weights-missing", "refuse", weights="{tmp}/nope.pth", names=("nope.pth",)),
    export("output-a-file", "refuse", "--output", "{file}", build=b.a_file, watch="{file}",
           names=(("--output", "a_file"),)),
    export("output-holds-other-files", "refuse", "--output", "{tmp}/entry",
           build=b.write_file("entry/keep.txt", "mine\n"), watch="{tmp}/entry",
           names=("--output",)),
    export("metrics-missing", "refuse", "--metrics", "{tmp}/nope.json", names=("nope.json",)),
    export("metrics-not-json", "refuse", "--metrics", "{file}",
           build=b.write_file("m.json", "not json\n"), names=("m.json",)),
    export("metrics-not-utf8", "refuse", "--metrics", "{file}",
           build=b.write_file("m8.json", b'{"a": "\xff"}'), names=("m8.json",)),
    export("nan-weights", "refuse", weights="{nan_ckpt}", needs=("derived",),
           names=("weights_x", ("nan", "finite"))),
    export("bad-config-value", "refuse", "SOLVER.BASE_LR", "-0.01", names=("SOLVER.BASE_LR",)),
]

REGDB_CASES = [
    regdb("splits-0", "refuse", "--config-file", "{demo}", "--splits", "0", *REGDB,
          names=("--splits",)),
    regdb("splits-letters", "refuse", "--config-file", "{demo}", "--splits", "a,b", *REGDB,
          names=("--splits",)),
    regdb("splits-empty", "refuse", "--config-file", "{demo}", "--splits", "", *REGDB,
          names=("--splits",)),
    regdb("splits-11", "refuse", "--config-file", "{demo}", "--splits", "1,11", *REGDB,
          names=("--splits",)),
    regdb("not-a-regdb-config", "refuse", "--config-file", "{demo}", "--splits", "1",
          names=("DATASETS.TESTS",)),
    regdb("max-epoch-0", "refuse", *REGDB_TRIALS, "@TINY", *REGDB, "OUTPUT_DIR", "{out}",
          "SOLVER.MAX_EPOCH", "0", build=b.regdb_copy(), needs=("regdb",),
          names=("SOLVER.MAX_EPOCH",)),
    regdb("base-lr-negative", "refuse", *REGDB_TRIALS, "@TINY", *REGDB, "OUTPUT_DIR", "{out}",
          "SOLVER.BASE_LR", "-0.01", build=b.regdb_copy(), needs=("regdb",),
          names=("SOLVER.BASE_LR",)),
    regdb("data-missing", "refuse", *REGDB_TRIALS, "@TINY", *REGDB, "OUTPUT_DIR", "{out}",
          env=(("FASTREID_DATASETS", "{tmp}"),), names=("RegDB",)),
    regdb("one-split", "accept", *REGDB_TRIALS, "@TINY", *REGDB, "OUTPUT_DIR", "{out}",
          build=b.regdb_copy(), needs=("regdb",)),
]

COMPARE_CASES = [
    compare("valid", "accept", "{run}", needs=("run",)),
    compare("run-missing", "refuse", "{tmp}/nope", names=("nope",)),
    compare("run-without-results", "refuse", "{tmp}", names=("protocol_results.json",)),
    compare("results-not-json", "refuse", "{run_copy}",
            build=b.run_with_results(b"{not json"), names=("protocol_results.json",)),
    compare("results-not-utf8", "refuse", "{run_copy}",
            build=b.run_with_results(b'{"a": "\xff"}'), names=("protocol_results.json",)),
    compare("results-a-list", "refuse", "{run_copy}", build=b.run_with_results(b"[1, 2]"),
            names=("protocol_results.json",)),
    compare("results-wrong-shape", "refuse", "{run_copy}",
            build=b.run_with_results(b'{"SyntheticVI": 3}'), names=("protocol_results.json",)),
    compare("same-label-twice", "refuse", "x={run}", "x={run}", needs=("run",), names=("x",)),
]

VISUALIZE_CASES = [
    visualize("valid", "accept"),
    visualize("top-0", "refuse", "--top", "0", names=("--top",)),
    visualize("random-0", "refuse", "--random", "0", names=("--random",)),
    visualize("query-out-of-range", "refuse", "--queries", "99", names=("--queries",)),
    visualize("queries-letters", "refuse", "--queries", "a", names=("--queries",)),
    visualize("task-unknown", "refuse", "--task", "outdoor", names=("--task",)),
    visualize("dataset-unknown", "refuse", "--dataset", "Nope", names=("Nope",)),
    visualize("seed-negative", "refuse", "--seed", "-1", names=("--seed",)),
    visualize("out-a-folder", "refuse", tail=("--out", "{tmp}", "@TINY"), names=("--out",)),
    visualize("weights-missing", "refuse", tail=("--model", "b", "{demo}", "{tmp}/nope.pth",
                                                 "@TINY"), names=("nope.pth",)),
    visualize("nan-weights", "refuse", tail=("--model", "b", "{demo}", "{nan_ckpt}", "@TINY"),
              needs=("derived",), names=("weights_x", ("nan", "finite"))),
    visualize("three-models", "refuse", tail=("--model", "b", "{demo}", "{weights}", "--model",
                                              "c", "{demo}", "{weights}", "@TINY"),
              names=("--model",)),
]

CASES: list[Case] = [*ISSUE, *MODEL, *INPUT, *DATALOADER, *SOLVER, *TEST, *DATASETS, *TOP_LEVEL,
                     *CONFIG_FILE, *TRAIN_NET_CLI, *SEARCH_CASES, *EXPORT_CASES, *REGDB_CASES,
                     *COMPARE_CASES, *VISUALIZE_CASES]
for _case in CASES:
    _case.default_names()
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"

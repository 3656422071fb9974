"""Every bad input is refused up front (the config schema at load, then cift.engine.validate):
through train_net's run(), each case exits 2 with one stderr line naming the config key (or
file), and OUTPUT_DIR is never created. The same checks run once in the launcher under
--num-gpus 2, before any spawn."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from fastreid.modeling.meta_arch import build_model

from cift.config import load_config
from cift.engine import validate
from cift.errors import CiftInputError
from cift.export.safetensors_io import state_dict_to_safetensors
from helpers import DEMO
from helpers import DEMO_CIFT as CIFT
from helpers.runs import TINY, train_net
from helpers.trees import make_regdb

TWO = ("--num-gpus", "2", "--dist-url", "auto")

# (id, config, KEY VALUE options, flags, text the error line must hold). Placeholders {name}
# are files made by the `files` fixture; root "empty_train"/"empty_test" swaps the data sets.
CASES = [
    # graph module (CIFT): k, temperatures, CRI, names
    ("topk-0", CIFT, ["MODEL.CIFT.TOPK", "0"], (), "MODEL.CIFT.TOPK"),
    ("topk-negative", CIFT, ["MODEL.CIFT.TOPK", "-3"], (), "MODEL.CIFT.TOPK"),
    ("topk-over-gallery-half", CIFT, ["MODEL.CIFT.TOPK", "100"], (), "MODEL.CIFT.TOPK"),
    ("topk-9-batch-16", CIFT, ["MODEL.CIFT.TOPK", "9"], (), "MODEL.CIFT.TOPK"),
    ("topk-over-gft-batch", CIFT, ["MODEL.CIFT.GRAPH", "gft", "MODEL.CIFT.TOPK", "17"], (),
     "MODEL.CIFT.TOPK"),
    ("tau-hom-0", CIFT, ["MODEL.CIFT.TAU_HOM", "0.0"], (), "MODEL.CIFT.TAU_HOM"),
    ("tau-hom-negative", CIFT, ["MODEL.CIFT.TAU_HOM", "-0.4"], (), "MODEL.CIFT.TAU_HOM"),
    ("tau-het-0", CIFT, ["MODEL.CIFT.TAU_HET", "0.0"], (), "MODEL.CIFT.TAU_HET"),
    ("tau-het-text", CIFT, ["MODEL.CIFT.TAU_HET", "warm"], (), "MODEL.CIFT.TAU_HET"),
    ("cri-samples-0", CIFT, ["MODEL.CIFT.CRI.SAMPLES", "0"], (), "MODEL.CIFT.CRI.SAMPLES"),
    ("cri-samples-negative", CIFT, ["MODEL.CIFT.CRI.SAMPLES", "-2"], (),
     "MODEL.CIFT.CRI.SAMPLES"),
    ("graph-unknown", CIFT, ["MODEL.CIFT.GRAPH", "gcn"], (), "MODEL.CIFT.GRAPH"),
    ("projection-unknown", CIFT, ["MODEL.CIFT.PROJECTION", "mlp"], (), "MODEL.CIFT.PROJECTION"),
    ("transfer-mode-unknown", CIFT, ["TEST.TRANSFER.MODE", "fast"], (), "TEST.TRANSFER.MODE"),
    ("transfer-backend-unknown", CIFT, ["TEST.TRANSFER.BACKEND", "annoy"], (),
     "TEST.TRANSFER.BACKEND"),
    # batch and sampler
    ("batch-not-2k-multiple", DEMO, ["SOLVER.IMS_PER_BATCH", "12"], (), "SOLVER.IMS_PER_BATCH"),
    ("batch-0", DEMO, ["SOLVER.IMS_PER_BATCH", "0"], (), "SOLVER.IMS_PER_BATCH"),
    ("batch-negative", DEMO, ["SOLVER.IMS_PER_BATCH", "-16"], (), "SOLVER.IMS_PER_BATCH"),
    ("batch-k3", DEMO, ["DATALOADER.NUM_INSTANCE", "3"], (), "SOLVER.IMS_PER_BATCH"),
    ("batch-needs-more-identities", DEMO, ["SOLVER.IMS_PER_BATCH", "80"], (),
     "SOLVER.IMS_PER_BATCH"),
    ("num-instance-0", DEMO, ["DATALOADER.NUM_INSTANCE", "0"], (), "DATALOADER.NUM_INSTANCE"),
    ("num-instance-negative", DEMO, ["DATALOADER.NUM_INSTANCE", "-4"], (),
     "DATALOADER.NUM_INSTANCE"),
    ("naive-sampler-batch", DEMO, ["DATALOADER.SAMPLER_TRAIN", "NaiveIdentitySampler",
                                   "SOLVER.IMS_PER_BATCH", "18"], (), "SOLVER.IMS_PER_BATCH"),
    # recipe keys: transforms, CMC variant
    ("interpolation-unknown", DEMO, ["INPUT.INTERPOLATION", "lanczos"], (),
     "INPUT.INTERPOLATION"),
    ("rea-attempts-0", DEMO, ["INPUT.REA.ATTEMPTS", "0"], (), "INPUT.REA.ATTEMPTS"),
    ("rea-ratio-sampling-unknown", DEMO, ["INPUT.REA.RATIO_SAMPLING", "normal"], (),
     "INPUT.REA.RATIO_SAMPLING"),
    ("cmc-mode-unknown", DEMO, ["TEST.CMC_MODE", "query"], (), "TEST.CMC_MODE"),
    # the epoch LR schedule
    ("sched-cosine", DEMO, ["SOLVER.SCHED", "CosineAnnealingLR"], (), "SOLVER.SCHED"),
    ("warmup-mode-unknown", DEMO, ["SOLVER.WARMUP_MODE", "step"], (), "SOLVER.WARMUP_MODE"),
    ("delay-epochs", DEMO, ["SOLVER.DELAY_EPOCHS", "3"], (), "SOLVER.DELAY_EPOCHS"),
    # ImageNet weights of a training run
    ("pretrain-path-missing", DEMO, ["MODEL.BACKBONE.PRETRAIN", "True",
                                     "MODEL.BACKBONE.PRETRAIN_PATH", "no_such_resnet18.pth"], (),
     "MODEL.BACKBONE.PRETRAIN_PATH"),
    ("pretrain-path-corrupt", DEMO, ["MODEL.BACKBONE.PRETRAIN", "True",
                                     "MODEL.BACKBONE.PRETRAIN_PATH", "{corrupt}"], (),
     "corrupt.pth"),
    # protocols
    ("sysu-mode-unknown", DEMO, ["TEST.SYSU.MODES", "('all', 'outdoor')"], (),
     "TEST.SYSU.MODES"),
    ("sysu-modes-empty", DEMO, ["TEST.SYSU.MODES", "()"], (), "TEST.SYSU.MODES"),
    ("sysu-shots-0", DEMO, ["TEST.SYSU.SHOTS", "(0,)"], (), "TEST.SYSU.SHOTS"),
    ("sysu-shots-empty", DEMO, ["TEST.SYSU.SHOTS", "()"], (), "TEST.SYSU.SHOTS"),
    ("sysu-shots-over-data", DEMO, ["TEST.SYSU.SHOTS", "(1, 20)"], (), "TEST.SYSU.SHOTS"),
    ("sysu-trials-0", DEMO, ["TEST.SYSU.TRIALS", "0"], (), "TEST.SYSU.TRIALS"),
    ("llcm-trials-0", DEMO, ["TEST.LLCM.TRIALS", "0"], (), "TEST.LLCM.TRIALS"),
    ("llcm-shots-0", DEMO, ["TEST.LLCM.SHOTS", "0"], (), "TEST.LLCM.SHOTS"),
    ("llcm-direction-unknown", DEMO, ["TEST.LLCM.VIS_TO_IR", "both"], (), "TEST.LLCM.VIS_TO_IR"),
    ("main-metric-unknown-metric", DEMO, ["TEST.MAIN_METRIC", "all-single/mAPx"], (),
     "TEST.MAIN_METRIC"),
    ("main-metric-unknown-task", DEMO, ["TEST.MAIN_METRIC", "outdoor-single/mAP"], (),
     "TEST.MAIN_METRIC"),
    ("main-metric-no-slash", DEMO, ["TEST.MAIN_METRIC", "mAP"], (), "TEST.MAIN_METRIC"),
    ("main-metric-not-with-top-r", DEMO, ["TEST.MAIN_METRIC", "all-single/mINP",
                                          "TEST.RETRIEVAL.TOP_R", "10"], (), "TEST.MAIN_METRIC"),
    ("top-r-negative", DEMO, ["TEST.RETRIEVAL.TOP_R", "-1"], (), "TEST.RETRIEVAL.TOP_R"),
    ("top-r-with-rerank", DEMO, ["TEST.RETRIEVAL.TOP_R", "5", "TEST.RERANK.ENABLED", "True"], (),
     "TEST.RETRIEVAL.TOP_R"),
    ("retrieval-backend-unknown", DEMO, ["TEST.RETRIEVAL.BACKEND", "annoy"], (),
     "TEST.RETRIEVAL.BACKEND"),
    ("search-backend-unknown", DEMO, ["TEST.SEARCH.BACKEND", "annoy"], (),
     "TEST.SEARCH.BACKEND"),
    # values the schema refuses at load (each was accepted, or failed late, before it)
    ("base-lr-negative", DEMO, ["SOLVER.BASE_LR", "-0.01"], (), "SOLVER.BASE_LR"),
    ("base-lr-infinite", DEMO, ["SOLVER.BASE_LR", "1e999"], (), "SOLVER.BASE_LR"),
    ("weight-decay-negative", DEMO, ["SOLVER.WEIGHT_DECAY", "-0.1"], (), "SOLVER.WEIGHT_DECAY"),
    ("ce-scale-negative", DEMO, ["MODEL.LOSSES.CE.SCALE", "-1.0"], (), "MODEL.LOSSES.CE.SCALE"),
    ("max-epoch-0", DEMO, ["SOLVER.MAX_EPOCH", "0"], (), "SOLVER.MAX_EPOCH"),
    ("eval-period-negative", DEMO, ["TEST.EVAL_PERIOD", "-1"], (), "TEST.EVAL_PERIOD"),
    ("checkpoint-period-0", DEMO, ["SOLVER.CHECKPOINT_PERIOD", "0"], (),
     "SOLVER.CHECKPOINT_PERIOD"),
    ("log-period-0", DEMO, ["SOLVER.LOG_PERIOD", "0"], (), "SOLVER.LOG_PERIOD"),
    ("rea-prob-2", DEMO, ["INPUT.REA.PROB", "2.0"], (), "INPUT.REA.PROB"),
    ("size-train-one-number", DEMO, ["INPUT.SIZE_TRAIN", "[32]"], (), "INPUT.SIZE_TRAIN"),
    ("size-test-zero", DEMO, ["INPUT.SIZE_TEST", "[32, 0]"], (), "INPUT.SIZE_TEST"),
    ("iters-per-epoch-negative", DEMO, ["SOLVER.ITERS_PER_EPOCH", "-5"], (),
     "SOLVER.ITERS_PER_EPOCH"),
    ("test-batch-0", DEMO, ["TEST.IMS_PER_BATCH", "0"], (), "TEST.IMS_PER_BATCH"),
    ("num-workers-negative", DEMO, ["DATALOADER.NUM_WORKERS", "-1"], (),
     "DATALOADER.NUM_WORKERS"),
    ("momentum-negative", DEMO, ["SOLVER.MOMENTUM", "-1.0"], (), "SOLVER.MOMENTUM"),
    ("optimizer-unknown", DEMO, ["SOLVER.OPT", "Lion"], (), "SOLVER.OPT"),
    ("steps-not-ints", DEMO, ["SOLVER.STEPS", "['a']"], (), "SOLVER.STEPS"),
    ("steps-after-the-last-epoch", DEMO, ["SOLVER.STEPS", "[20]"], (), "SOLVER.STEPS"),
    ("feat-dim-not-the-backbone's", DEMO, ["MODEL.BACKBONE.FEAT_DIM", "100"], (),
     "MODEL.BACKBONE.FEAT_DIM"),
    ("pixel-std-zero", DEMO, ["MODEL.PIXEL_STD", "[0.0, 0.0, 0.0]"], (), "MODEL.PIXEL_STD"),
    ("fastreid-key-unused", DEMO, ["MODEL.LOSSES.TRI.MARGIN", "0.5"], (),
     "MODEL.LOSSES.TRI.MARGIN"),
    ("removed-key", DEMO, ["DATASETS.REGDB.TRIAL", "2"], (), "DATASETS.REGDB.SPLIT"),
    ("topology-task-unknown", DEMO, ["TEST.TOPOLOGY.ENABLED", "True", "TEST.TOPOLOGY.TASKS",
                                     "('outdoor-single',)"], (), "TEST.TOPOLOGY.TASKS"),
    ("yaml-not-a-mapping", "{list_yaml}", [], (), "list_top.yml"),
    ("yaml-base-cycle", "{cycle_yaml}", [], (), "_BASE_ cycle"),
    ("yaml-not-utf8", "{latin1_yaml}", [], (), "not UTF-8"),
    # registry names
    ("meta-arch-unknown", DEMO, ["MODEL.META_ARCHITECTURE", "Transformer"], (),
     "MODEL.META_ARCHITECTURE"),
    ("backbone-unknown", DEMO, ["MODEL.BACKBONE.NAME", "build_vit"], (), "MODEL.BACKBONE.NAME"),
    ("heads-unknown", DEMO, ["MODEL.HEADS.NAME", "ArcHead"], (), "MODEL.HEADS.NAME"),
    ("sampler-unknown", DEMO, ["DATALOADER.SAMPLER_TRAIN", "RandomSampler"], (),
     "DATALOADER.SAMPLER_TRAIN"),
    ("dataset-unknown", DEMO, ["DATASETS.NAMES", "('Market9000',)"], (), "Market9000"),
    # data sets and splits
    ("train-sets-empty", DEMO, ["DATASETS.NAMES", "()"], (), "DATASETS.NAMES"),
    ("test-sets-empty", DEMO, ["DATASETS.TESTS", "()"], (), "DATASETS.TESTS"),
    ("num-classes-under-identities", DEMO, ["MODEL.HEADS.NUM_CLASSES", "3"], (),
     "MODEL.HEADS.NUM_CLASSES"),
    ("train-split-empty", DEMO, ["DATASETS.NAMES", "('SYSUMM01',)", "DATASETS.TESTS",
                                 "('SYSUMM01',)", "root", "empty_train"], (), "DATASETS.NAMES"),
    ("test-split-empty", DEMO, ["DATASETS.NAMES", "('SYSUMM01',)", "DATASETS.TESTS",
                                "('SYSUMM01',)", "root", "empty_test"], (), "DATASETS.TESTS"),
    # config files and options
    ("yaml-syntax", "{bad_yaml}", [], (), "bad_syntax.yml"),
    ("yaml-tab", "{tab_yaml}", [], (), "not valid YAML"),
    ("yaml-missing-base", "{missing_base}", [], (), "no_such_base.yml"),
    ("option-unknown-key", DEMO, ["SOLVER.NOT_A_KEY", "1"], (), "NOT_A_KEY"),
    ("option-odd-count", DEMO, ["SOLVER.MAX_EPOCH"], (), "command-line options"),
    ("device-unknown", DEMO, ["MODEL.DEVICE", "tpu"], (), "MODEL.DEVICE"),
    ("dist-timeout-negative", DEMO, ["DIST_TIMEOUT_S", "-5"], (), "DIST_TIMEOUT_S"),
    # checkpoints
    ("weights-missing", DEMO, ["MODEL.WEIGHTS", "{missing}"], (), "MODEL.WEIGHTS"),
    ("eval-without-weights", DEMO, [], ("--eval-only",), "MODEL.WEIGHTS"),
    ("eval-corrupt-weights", DEMO, ["MODEL.WEIGHTS", "{corrupt}"], ("--eval-only",),
     "corrupt.pth"),
    ("train-truncated-weights", DEMO, ["MODEL.WEIGHTS", "{truncated}"], (), "truncated.pth"),
    ("train-unsafe-weights", DEMO, ["MODEL.WEIGHTS", "{unsafe}"], (), "--trust-checkpoint"),
    ("eval-weights-of-other-architecture", CIFT, ["MODEL.WEIGHTS", "{baseline}"],
     ("--eval-only",), "does not fit"),
    ("eval-weights-of-other-depth", DEMO, ["MODEL.WEIGHTS", "{baseline}",
                                           "MODEL.BACKBONE.DEPTH", "34x"], ("--eval-only",),
     "does not fit"),
    # the launcher checks once, for the world size it will spawn, before any process starts
    ("launcher-batch-not-split", CIFT, ["SOLVER.IMS_PER_BATCH", "24"], TWO,
     "SOLVER.IMS_PER_BATCH"),
    ("launcher-topk-over-rank-half", CIFT, ["MODEL.CIFT.TOPK", "8"], TWO, "MODEL.CIFT.TOPK"),
    ("launcher-main-metric", DEMO, ["TEST.MAIN_METRIC", "all/mAP"], TWO, "TEST.MAIN_METRIC"),
    ("launcher-test-batch-under-world-size", DEMO, ["TEST.IMS_PER_BATCH", "1"], TWO,
     "TEST.IMS_PER_BATCH"),
    ("launcher-yaml-syntax", "{bad_yaml}", [], TWO, "bad_syntax.yml"),
    # files read or written at run time, data set contents, weights (engineer B's checks)
    ("output-dir-a-file", DEMO, ["OUTPUT_DIR", "{a_file}"], (), "not a folder"),
    ("eval-output-under-a-file", DEMO, ["MODEL.WEIGHTS", "{baseline}", "OUTPUT_DIR",
                                        "{a_file}"], ("--eval-only",), "is a file"),
    ("eval-nan-weights", DEMO, ["MODEL.WEIGHTS", "{nan}"], ("--eval-only",), "NaN or inf"),
    ("train-nan-weights", DEMO, ["MODEL.WEIGHTS", "{nan}"], (), "NaN or inf"),
    ("train-weights-fitting-nothing", DEMO, ["MODEL.WEIGHTS", "{unrelated}"], (),
     "none of its 1 tensors fits"),
    ("sysu-train-test-ids-overlap", DEMO, ["DATASETS.NAMES", "('SYSUMM01',)", "DATASETS.TESTS",
                                           "('SYSUMM01',)", "root", "overlap_ids"], (),
     "listed both for training"),
    ("regdb-train-test-images-overlap", DEMO, ["DATASETS.NAMES", "('RegDB',)", "DATASETS.TESTS",
                                               "('RegDB',)", "root", "overlap_images"], (),
     "in both the train and the test split"),
]


def sysu_copy(src: Path, dst: Path, empty: tuple[str, ...], extra_test: str = "") -> Path:
    """A SYSU-MM01 tree whose camera folders link to `src`'s, with the `empty` id files (and
    `extra_test` ids appended to the test ids)."""
    tree = dst / "SYSU-MM01"
    (tree / "exp").mkdir(parents=True)
    for cam in src.glob("cam*"):
        (tree / cam.name).symlink_to(cam, target_is_directory=True)
    for name in ("train_id.txt", "val_id.txt", "test_id.txt"):
        text = "" if name in empty else (src / "exp" / name).read_text()
        if name == "test_id.txt" and extra_test:
            text = text.strip() + "," + extra_test
        (tree / "exp" / name).write_text(text)
    return dst


def regdb_overlapping(dst: Path) -> Path:
    """A fake RegDB tree whose trial-1 test list also names a training image."""
    data = make_regdb(dst)
    train = (data / "idx" / "train_visible_1.txt").read_text().splitlines()[0]
    test = data / "idx" / "test_visible_1.txt"
    test.write_text(test.read_text() + train + "\n")
    return dst


@pytest.fixture(scope="module")
def files(datasets_root, tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "bad_syntax.yml").write_text(f"_BASE_: {DEMO}\nSOLVER: [unclosed\n")
    (d / "tab.yml").write_text(f"_BASE_: {DEMO}\nSOLVER:\n\tMAX_EPOCH: 3\n")
    (d / "missing_base.yml").write_text(f"_BASE_: {d / 'no_such_base.yml'}\n")
    (d / "list_top.yml").write_text(f"- _BASE_: {DEMO}\n")
    (d / "cycle.yml").write_text("_BASE_: cycle.yml\n")
    (d / "latin1.yml").write_bytes(f"_BASE_: {DEMO}\n# caf\xe9\n".encode("latin-1"))
    (d / "corrupt.pth").write_bytes(b"\x80\x02 definitely not a checkpoint" * 10)
    cfg = load_config(DEMO, [*TINY, "MODEL.HEADS.NUM_CLASSES", "6"])
    model = build_model(cfg)
    torch.save({"model": model.state_dict()}, d / "good.pth")
    data = (d / "good.pth").read_bytes()
    (d / "truncated.pth").write_bytes(data[:len(data) // 3])
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=1)}, d / "unsafe.pth")
    (d / "baseline.safetensors").write_bytes(state_dict_to_safetensors(model.state_dict()))
    src = datasets_root / "SyntheticVI"
    first_train_id = (src / "exp" / "train_id.txt").read_text().split(",")[0].strip()
    roots = {"empty_train": sysu_copy(src, d / "empty_train", ("train_id.txt", "val_id.txt")),
             "empty_test": sysu_copy(src, d / "empty_test", ("test_id.txt",)),
             "overlap_ids": sysu_copy(src, d / "overlap_ids", (), first_train_id),
             "overlap_images": regdb_overlapping(d / "overlap_images")}
    nan = model.state_dict()
    nan["heads.neck.weight"] = torch.full_like(nan["heads.neck.weight"], 1.0)
    nan["heads.neck.weight"][3] = float("nan")
    torch.save({"model": nan}, d / "nan.pth")
    (d / "unrelated.safetensors").write_bytes(state_dict_to_safetensors({"w": torch.ones(3)}))
    (d / "a_file").write_text("not a folder")
    return {"bad_yaml": str(d / "bad_syntax.yml"), "tab_yaml": str(d / "tab.yml"),
            "list_yaml": str(d / "list_top.yml"), "cycle_yaml": str(d / "cycle.yml"),
            "latin1_yaml": str(d / "latin1.yml"),
            "missing_base": str(d / "missing_base.yml"), "missing": str(d / "absent.pth"),
            "corrupt": str(d / "corrupt.pth"), "truncated": str(d / "truncated.pth"),
            "unsafe": str(d / "unsafe.pth"), "baseline": str(d / "baseline.safetensors"),
            "nan": str(d / "nan.pth"), "unrelated": str(d / "unrelated.safetensors"),
            "a_file": str(d / "a_file"),
            **{k: str(v) for k, v in roots.items()}}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_anything_is_written(case, files, env, tmp_path,
                                                         monkeypatch, capsys):
    _, config, options, flags, expected = case
    options = [o.format(**files) for o in options]
    if "root" in options:  # a data set root of its own
        at = options.index("root")
        monkeypatch.setenv("FASTREID_DATASETS", files[options[at + 1]])
        del options[at:at + 2]
    out = tmp_path / "out"
    spawned = []
    monkeypatch.setattr("cift.engine.launch.spawn_workers", lambda *a: spawned.append(a))
    argv = ["--config-file", config.format(**files), *flags, *TINY, "OUTPUT_DIR", str(out),
            *options]
    rc = train_net.run(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert expected in err, err
    assert not out.exists()
    assert not spawned


def test_table_covers_every_check():
    """Each check function of CHECKS is exercised by at least one case above (by name)."""
    assert len(CASES) >= 40
    covered = {"check_device", "check_weights_path", "check_batch_keys", "check_topk_batch",
               "check_splits", "check_num_classes", "check_sampler_fits_data", "check_test_tasks",
               "check_weights", "check_pretrained",
               # check_images: tests/data/test_image_check.py; check_resume_batch (a checkpoint in
               # OUTPUT_DIR): tests/engine/test_resume.py
               "check_images", "check_resume_batch",
               "check_output_folder", "check_train_test_disjoint"}
    assert {check.__name__ for check in validate.CHECKS} <= covered


def test_main_metric_choices_come_from_the_tasks(env):
    cfg = load_config(DEMO, TINY)
    job = validate.Job(cfg)
    data = job.dataset("SyntheticVI")
    from cift.evaluation.tasks import build_tasks

    tasks = build_tasks(cfg, data.protocol, list(data.query) + list(data.gallery),
                        len(data.query))
    assert "all-single/mAP" in validate.main_metric_choices(tasks, 0)
    assert "indoor-multi/mINP" in validate.main_metric_choices(tasks, 0)
    assert "all-single/mAP@10" in validate.main_metric_choices(tasks, 10)
    assert "all-single/mINP" not in validate.main_metric_choices(tasks, 10)


def test_good_config_passes_every_check(env):
    for config in (DEMO, CIFT):
        validate.validate(load_config(config, TINY))
        validate.validate(load_config(config, [*TINY, "SOLVER.IMS_PER_BATCH", "32"]),
                          world_size=2)


def test_extra_checks_can_be_added(env):
    calls = []
    checks = [*validate.CHECKS, lambda job: calls.append(job.cfg.SEED)]
    validate.validate(load_config(DEMO, TINY), checks=checks)
    assert calls == [0]



def test_a_cuda_device_needs_a_visible_gpu(env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config(DEMO, [*TINY, "MODEL.DEVICE", "cuda:1"])
    with pytest.raises(CiftInputError, match=r"MODEL.DEVICE 'cuda:1': no GPU is visible"):
        validate.validate(cfg, checks=[validate.check_device])

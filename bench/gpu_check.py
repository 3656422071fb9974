#!/usr/bin/env python
"""The GPU path of the project checked in one command, sized for a short GPU loan.

    python bench/gpu_check.py --out DIR                  # one CUDA GPU (docs/gpu.md)
    python bench/gpu_check.py --out DIR --device cpu --tiny   # the CPU dry run (tests)

From a cold start, each check one function, in this order:

1. data: a synthetic set in the SYSU-MM01 layout at the paper's input size (288x144),
   generated into WORK/datasets unless already there;
2. training: configs/SYSU-MM01/baseline_R50.yml and cift_R50.yml (ResNet-50, batch 64, CRI),
   random init, a fixed number of iterations through CIFTTrainer with the GPU train loader
   (workers, pinned memory, prefetch to the GPU), in fp32 and with SOLVER.AMP.ENABLED:
   images/s, step time, peak CUDA memory, the loss finite and falling;
3. evaluation: the CIFT model's protocol evaluation on the GPU (fastreid's inference, the
   project's evaluator, test-time transfer); then its test features transferred (dense graph,
   neighbour lists with torch and faiss) and searched (top-R lists) on the GPU and on the CPU:
   at most 1e-4 apart;
4. process groups: train_net's main in a 1-process NCCL group (spawned as `--num-gpus N`
   spawns its workers) and `train_net.py --num-gpus 2` where two GPUs are visible.

Prints one table, writes it to OUT/gpu_check.json and exits 1 naming the first failed check
(0 when none failed). Without a GPU (and without --device cpu) it says so in one line and exits
2. `--device cpu --tiny` runs the same functions on tiny sizes with gloo: the dry run that keeps
this script working between GPU loans.
"""

import argparse
import copy
import gc
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STARTED = time.perf_counter()  # the budget counts from here: imports and CUDA start included

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))

import cift  # noqa: E402, F401  first: patches fastreid, registers everything

# isort: split
from fastreid.engine.train_loop import HookBase  # noqa: E402
from fastreid.evaluation import inference_on_dataset  # noqa: E402

import train_net  # noqa: E402
from cift.atomic import atomic_write_json  # noqa: E402
from cift.branches import BRANCH_OF_QUERY_MODALITY, branch_features  # noqa: E402
from cift.data.modality import INFRARED  # noqa: E402
from cift.data.synthetic import generate_synthetic_sysu  # noqa: E402
from cift.engine import CIFTTrainer  # noqa: E402
from cift.engine.amp import autocast_dtype  # noqa: E402
from cift.engine.launch import dist_backend, free_port, spawn_workers  # noqa: E402
from cift.engine.setup import setup  # noqa: E402
from cift.errors import CiftInputError  # noqa: E402
from cift.neighbours import nearest_neighbours, self_nearest_neighbours  # noqa: E402
from cift.search_settings import TransferSettings  # noqa: E402

CONFIGS = {"baseline": "configs/SYSU-MM01/baseline_R50.yml",
           "cift": "configs/SYSU-MM01/cift_R50.yml"}
TOLERANCE = 1e-4  # largest |GPU - CPU| accepted for transferred features and similarities
TIE_GAP = 1e-5  # rows whose k-th and (k+1)-th similarities are closer may pick other neighbours
TOP_R = 20  # depth of the searched top-R lists
BUDGET_S = 360.0  # the whole check, from a cold start, on one GPU
AMP_GOAL = 1.5  # images/s with AMP over fp32
RESULTS_FILE = "gpu_check.json"


@dataclass(frozen=True)
class Sizes:
    """What one check trains and evaluates."""

    height: int  # image and input size
    width: int
    num_ids: int  # synthetic identities: train + val + test
    test_ids: int
    val_ids: int
    images_per_camera: int  # multi-shot galleries need 10
    iters: int  # training iterations of each run
    warmup: int  # first iterations left out of the timing
    group_iters: int  # iterations of each process-group run
    trials: int  # gallery draws of the evaluation
    opts: tuple[str, ...] = ()  # config overrides beyond the paper's


FULL = Sizes(height=288, width=144, num_ids=40, test_ids=8, val_ids=4, images_per_camera=10,
             iters=50, warmup=10, group_iters=10, trials=10)
TINY = Sizes(height=32, width=16, num_ids=12, test_ids=4, val_ids=2, images_per_camera=10,
             iters=5, warmup=1, group_iters=2, trials=2,
             opts=("MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
                   "INPUT.PADDING.SIZE", "4", "SOLVER.IMS_PER_BATCH", "16"))


@dataclass
class Row:
    """One line of the results table: a check, its outcome ("pass", "fail", "skip" or
    "info"), what it measured and how; `data` holds the figures for the JSON file."""

    check: str
    status: str
    value: str = ""
    detail: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class Context:
    """What the checks share: the device, the sizes, the work folder, and what the training
    checks leave for the later ones (trained models and their configs)."""

    device: str
    sizes: Sizes
    work: Path
    workers: int
    trained: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


# -- pure helpers ---------------------------------------------------------------------------


def loss_falls(losses: list[float]) -> bool:
    """Whether the mean of the last quarter of `losses` (at least one value) is below that of
    the first quarter."""
    n = max(1, len(losses) // 4)
    return statistics.fmean(losses[-n:]) < statistics.fmean(losses[:n])


def near_tie_rows(gallery_keys: torch.Tensor, query_keys: torch.Tensor, k: int,
                  gap: float = TIE_GAP) -> torch.Tensor:
    """(G+Q,) bool: the rows of the test graph [gallery ; queries] whose top-k choice hangs on
    a near-tie, where two devices' rounding may pick other neighbours (and give rows that
    differ by far more than the rounding).

    A gallery row keeps its k most similar gallery nodes (itself first); a query row keeps
    itself and its k - 1 most similar gallery nodes. A row is a near-tie when the last kept
    and the first dropped similarity differ by less than `gap`.

    Args:
        gallery_keys: (G, d) and query_keys: (Q, d) the features the affinities compare.
    """
    g_sims, _ = self_nearest_neighbours(gallery_keys, k + 1)
    g_tie = g_sims[:, k - 1] - g_sims[:, k] < gap if g_sims.shape[1] > k else \
        torch.zeros(g_sims.shape[0], dtype=torch.bool)
    if k < 2:  # a query row keeps only itself
        q_tie = torch.zeros(query_keys.shape[0], dtype=torch.bool)
    else:
        q_sims, _ = nearest_neighbours(query_keys, gallery_keys, k)
        q_tie = (q_sims[:, k - 2] - q_sims[:, k - 1] < gap if q_sims.shape[1] >= k else
                 torch.zeros(q_sims.shape[0], dtype=torch.bool))
    return torch.cat([g_tie, q_tie])


def largest_difference(a: torch.Tensor, b: torch.Tensor, skip: torch.Tensor | None = None
                       ) -> float:
    """max |a - b| over the rows of two (N, ...) tensors (on any devices), leaving out the
    rows where `skip` (N,) is True; 0 when no row is left."""
    diff = (a.detach().float().cpu() - b.detach().float().cpu()).abs().flatten(1).amax(dim=1)
    if skip is not None:
        diff = diff[~skip]
    return float(diff.max()) if diff.numel() else 0.0


def first_failure(rows: list[Row]) -> Row | None:
    return next((row for row in rows if row.status == "fail"), None)


def format_table(rows: list[Row]) -> str:
    """The rows as a plain-text table (check, status, value, detail)."""
    cells = [("check", "status", "value", "detail")]
    cells += [(r.check, r.status, r.value, r.detail) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(3)) + "  " + c[3] for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(line.rstrip() for line in lines)


# -- environment ----------------------------------------------------------------------------


def faiss_status() -> tuple[object | None, str]:
    """(the faiss module or None, one line saying which faiss runs and where)."""
    try:
        import faiss
    except ImportError as err:
        return None, f"not importable ({err})"
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    where = f"GPU index ({gpus} GPUs)" if gpus else "CPU index (a faiss without GPU support)"
    return faiss, f"faiss {getattr(faiss, '__version__', '?')}, {where}"


def environment(ctx: Context) -> dict:
    """The software and device the figures belong to."""
    env = {"python": sys.version.split()[0], "torch": torch.__version__,
           "cuda": torch.version.cuda, "device": ctx.device, "faiss": faiss_status()[1],
           "sizes": asdict(ctx.sizes), "workers": ctx.workers}
    if ctx.cuda:
        env.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
                   bf16=torch.cuda.is_bf16_supported(),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return env


# -- 1. data --------------------------------------------------------------------------------


def check_data(ctx: Context) -> list[Row]:
    """The synthetic SYSU-MM01-layout set the other checks read (as data set SYSUMM01, through
    FASTREID_DATASETS), generated at the input size unless already there."""
    s = ctx.sizes
    root = ctx.work / "datasets" / "SYSU-MM01"
    existed = (root / ".complete").is_file()
    start = time.perf_counter()
    try:
        generate_synthetic_sysu(root, num_ids=s.num_ids, images_per_camera=s.images_per_camera,
                                height=s.height, width=s.width, test_ids=s.test_ids,
                                val_ids=s.val_ids)
    except (ValueError, FileExistsError) as err:
        raise CiftInputError(f"--work {ctx.work}: {err}") from None
    seconds = time.perf_counter() - start
    os.environ["FASTREID_DATASETS"] = str(root.parent)
    images = sum(1 for _ in root.rglob("*.jpg"))
    how = "reused" if existed else f"generated in {seconds:.1f} s"
    return [Row("data", "pass", f"{images} images {s.height}x{s.width}",
                f"{s.num_ids} identities ({s.test_ids} test), {how}, {root}",
                {"images": images, "seconds": round(seconds, 2), "reused": existed})]


# -- 2. training ----------------------------------------------------------------------------


class StepClock(HookBase):
    """Wall time of every training step (the device synchronised at each step's end) and the
    peak CUDA memory up to the last step (before the end-of-training evaluation)."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.step_s: list[float] = []
        self.peak_bytes = 0

    def before_train(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.last = time.perf_counter()

    def after_step(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated()
        now = time.perf_counter()
        self.step_s.append(now - self.last)
        self.last = now


@contextmanager
def own_log_handlers():
    """fastreid's setup_logger (train_net's setup) adds a console and a log.txt handler to the
    "fastreid" logger for every OUTPUT_DIR; remove them when the run ends, so that the next
    run's lines go neither twice to the console nor into this run's log.txt."""
    log = logging.getLogger("fastreid")
    before = list(log.handlers)
    try:
        yield
    finally:
        for handler in [h for h in log.handlers if h not in before]:
            log.removeHandler(handler)


def run_options(ctx: Context, name: str, iters: int, amp: bool = False) -> list[str]:
    """The paper config's KEY VALUE overrides for one check run: the sizes' input size, random
    init, `iters` iterations in one epoch, one short evaluation at the end (1 trial, no
    plot)."""
    size = f"[{ctx.sizes.height}, {ctx.sizes.width}]"
    return [*ctx.sizes.opts, "INPUT.SIZE_TRAIN", size, "INPUT.SIZE_TEST", size,
            "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.DEVICE", ctx.device,
            "SOLVER.AMP.ENABLED", str(amp), "SOLVER.ITERS_PER_EPOCH", str(iters),
            "SOLVER.MAX_EPOCH", "1", "SOLVER.STEPS", "[1]", "SOLVER.CHECKPOINT_PERIOD", "1",
            "SOLVER.LOG_PERIOD", "10",
            "TEST.EVAL_PERIOD", "1", "TEST.SYSU.TRIALS", "1", "TEST.CMC_PLOT", "False",
            "DATALOADER.NUM_WORKERS", str(ctx.workers),
            "OUTPUT_DIR", str(ctx.work / "runs" / name)]


def loader_description(loader) -> tuple[str, bool]:
    """(what the train loader is, whether it is the CUDA one: pinned memory, prefetching to
    the GPU on a side stream)."""
    pinned = bool(getattr(loader, "pin_memory", False))
    prefetch = hasattr(loader, "stream")  # fastreid's DataLoaderX
    text = (f"{type(loader).__name__}, {loader.num_workers} workers"
            f"{', pinned memory' if pinned else ''}{', GPU prefetch' if prefetch else ''}")
    return text, pinned and prefetch and loader.num_workers > 0


def check_training(ctx: Context, arch: str, amp: bool) -> list[Row]:
    """One run of the paper config through CIFTTrainer (train_net's training branch, with a
    StepClock hook): images/s and step time after the warm-up iterations, peak CUDA memory,
    the total loss finite and falling, the CUDA train loader in use."""
    name = f"{arch} {'amp' if amp else 'fp32'}"
    if amp and not ctx.cuda:
        return [Row(f"train {name}", "skip", "", "GPU only: bfloat16 convolutions without "
                    "hardware support take tens of times fp32's step on a CPU (the AMP step "
                    "on the CPU: tests/engine/test_amp.py)")]
    s = ctx.sizes
    argv = ["--config-file", str(ROOT / CONFIGS[arch]),
            *run_options(ctx, name.replace(" ", "-"), s.iters, amp)]
    with own_log_handlers():
        cfg = setup(train_net.argument_parser().parse_args(argv))
        trainer = CIFTTrainer(cfg)
        clock = StepClock(ctx.cuda)
        trainer.register_hooks([clock])
        trainer.resume_or_load(resume=False)
        trainer.train()
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    timed = clock.step_s[s.warmup:]
    batch = cfg.SOLVER.IMS_PER_BATCH
    images_per_s = batch * len(timed) / sum(timed)
    step_ms = 1000 * statistics.median(timed)
    data_ms = 1000 * statistics.median(
        v for v, _ in trainer.storage.history("data_time").values()[s.warmup:])
    loader, cuda_loader = loader_description(trainer.data_loader)
    finite = all(math.isfinite(v) for v in losses)
    falling = finite and loss_falls(losses)
    precision = str(autocast_dtype(torch.device(ctx.device))).replace("torch.", "") if amp \
        else "float32"
    problems = [text for bad, text in ((not finite, "loss not finite"),
                                       (not falling, "loss not falling"),
                                       (ctx.cuda and not cuda_loader, "not the CUDA loader"))
                if bad]
    peak_mib = clock.peak_bytes / 2**20
    value = f"{images_per_s:.0f} img/s, {step_ms:.0f} ms/step"
    if ctx.cuda:
        value += f", {peak_mib / 1024:.1f} GiB peak"
    detail = (f"batch {batch}, {precision}, loss {losses[0]:.2f} -> {losses[-1]:.2f}, "
              f"data wait {data_ms:.1f} ms, {loader}")
    ctx.trained[name] = (cfg, trainer.model)
    row = Row(f"train {name}", "fail" if problems else "pass", value,
              "; ".join(problems + [detail]),
              {"images_per_s": round(images_per_s, 1), "step_ms": round(step_ms, 1),
               "data_ms": round(data_ms, 2), "peak_cuda_mib": round(peak_mib),
               "losses": [round(v, 4) for v in losses], "precision": precision,
               "iterations": len(losses), "timed_steps": len(timed)})
    del trainer
    release_memory()
    return [row]


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_amp_speedup(ctx: Context, arch: str, rows: list[Row]) -> list[Row]:
    """AMP's images/s over fp32's for `arch` (a goal, not a pass/fail check)."""
    speed = {r.check: r.data.get("images_per_s") for r in rows}
    fp32, amp = speed.get(f"train {arch} fp32"), speed.get(f"train {arch} amp")
    if not fp32 or not amp:
        return [Row(f"amp speed-up {arch}", "skip", "", "needs both training runs")]
    ratio = amp / fp32
    return [Row(f"amp speed-up {arch}", "info", f"{ratio:.2f}x",
                f"goal >= {AMP_GOAL}x: {'met' if ratio >= AMP_GOAL else 'not met'}",
                {"ratio": round(ratio, 3)})]


# -- 3. evaluation --------------------------------------------------------------------------


def check_evaluation(ctx: Context) -> list[Row]:
    """The trained CIFT model (fp32) evaluated once on the device (fastreid's inference and
    the project's evaluator and transfer), then its test features transferred and searched on
    the device and on the CPU."""
    if "cift fp32" not in ctx.trained:
        return [Row("evaluate", "skip", "", "needs the CIFT fp32 training run")]
    cfg, model = ctx.trained["cift fp32"]
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TEST.SYSU.TRIALS = ctx.sizes.trials
    cfg.freeze()
    start = time.perf_counter()
    loader, evaluator = CIFTTrainer.build_evaluator(cfg, cfg.DATASETS.TESTS[0], model=model)
    results = inference_on_dataset(model, loader, evaluator, flip_test=cfg.TEST.FLIP.ENABLED)
    seconds = time.perf_counter() - start
    main = results["CIFT"]["all-single"]
    finite = all(math.isfinite(v) for v in main.values())
    rows = [Row("evaluate", "pass" if finite else "fail",
                f"R1 {main['R1']:.1f}, mAP {main['mAP']:.1f}",
                f"CIFT all-single, {ctx.sizes.trials} trials, {seconds:.1f} s"
                + ("" if finite else "; metrics not finite"),
                {"seconds": round(seconds, 2), "R1": main["R1"], "mAP": main["mAP"]})]
    feats, paths = evaluator.gathered()
    row_of = {path: i for i, path in enumerate(paths)}
    items = evaluator.items
    queries = [row_of[it[0]] for it in items if it[3] == INFRARED]
    gallery = [row_of[it[0]] for it in items if it[3] != INFRARED]
    branch = BRANCH_OF_QUERY_MODALITY[INFRARED]
    g = torch.from_numpy(branch_features(feats[gallery], branch))
    q = torch.from_numpy(branch_features(feats[queries], branch))
    cpu_model = copy.deepcopy(model).cpu()
    rows += compare_transfers(ctx, model, cpu_model, g, q, branch)
    rows += compare_searches(ctx, g, q)
    return rows


def compare_transfers(ctx: Context, model, cpu_model, g: torch.Tensor, q: torch.Tensor,
                      branch: str) -> list[Row]:
    """The model's test-time transfer of the [gallery ; queries] graph on the device against
    the same on the CPU, for the dense graph and the neighbour lists (torch, faiss)."""
    faiss, faiss_text = faiss_status()
    unit_g, unit_q = (torch.nn.functional.normalize(x, dim=1) for x in (g, q))
    keys = cpu_model.projections[branch]  # v(x): the features the affinities compare
    with torch.no_grad():
        ties = near_tie_rows(keys(unit_g), keys(unit_q), cpu_model.graph.k)
    rows = []
    for mode, backend in (("dense", "torch"), ("sparse", "torch"), ("sparse", "faiss")):
        name = f"transfer {mode} {backend}" if mode == "sparse" else "transfer dense"
        if backend == "faiss" and faiss is None:
            rows.append(Row(name, "skip", "", f"faiss {faiss_text}"))
            continue
        outputs = []
        for m in (model, cpu_model):
            m.test_transfer = TransferSettings(mode=mode, backend=backend)
            outputs.append(torch.cat(m.transfer_test_features(g, q, branch)))
        rows.append(difference_row(name, outputs, ties,
                                   f"{g.shape[0]} gallery + {q.shape[0]} query nodes"
                                   + (f", {faiss_text}" if backend == "faiss" else "")))
    return rows


def compare_searches(ctx: Context, g: torch.Tensor, q: torch.Tensor) -> list[Row]:
    """Each query's top-R gallery similarities (cift.neighbours, as the top-R evaluation
    searches) on the device against the CPU, torch and faiss; sorted similarities do not
    depend on how ties are ordered."""
    faiss, faiss_text = faiss_status()
    rows = []
    for backend in ("torch", "faiss"):
        name = f"search top-{TOP_R} {backend}"
        if backend == "faiss" and faiss is None:
            rows.append(Row(name, "skip", "", f"faiss {faiss_text}"))
            continue
        sims = [nearest_neighbours(q.to(device), g.to(device), TOP_R, backend=backend)[0]
                for device in (ctx.device, "cpu")]
        rows.append(difference_row(name, sims, None, f"{q.shape[0]} queries"
                                   + (f", {faiss_text}" if backend == "faiss" else "")))
    return rows


def difference_row(name: str, pair: list[torch.Tensor], ties: torch.Tensor | None,
                   detail: str) -> Row:
    """A pass/fail row for a device result against the CPU one (near-tie rows left out)."""
    diff = largest_difference(pair[0], pair[1], ties)
    n_ties = int(ties.sum()) if ties is not None else 0
    if n_ties:
        detail += f", {n_ties} near-tie rows left out"
    ok = diff <= TOLERANCE
    return Row(name, "pass" if ok else "fail", f"max |dev - cpu| {diff:.1e}",
               detail + ("" if ok else f"; above {TOLERANCE:g}"),
               {"max_abs_diff": diff, "near_tie_rows": n_ties})


# -- 4. process groups ----------------------------------------------------------------------


def check_group(ctx: Context, processes: int) -> list[Row]:
    """train_net's main in a job of `processes` processes (NCCL on GPUs, gloo on the CPU): one
    process is spawned directly (train_net's launch runs a 1-process job without a group),
    several through `train_net.py --num-gpus N`. Passes when the job ends with its protocol
    results written."""
    name = f"{dist_backend()} {processes} process{'es' if processes > 1 else ''}"
    visible = torch.cuda.device_count() if ctx.cuda else 0
    if processes > 1 and visible < processes:
        return [Row(name, "skip", "", f"needs {processes} GPUs, {visible} visible")]
    out = ctx.work / "runs" / f"group-{processes}"
    argv = ["--config-file", str(ROOT / CONFIGS["cift"]),
            *run_options(ctx, out.name, ctx.sizes.group_iters)]
    start = time.perf_counter()
    if processes == 1:
        args = train_net.argument_parser().parse_args(argv)
        spawn_workers(1, (train_net.main, 1, 1, 0, f"tcp://127.0.0.1:{free_port()}", (args,)))
    else:
        status = train_net.run(["--num-gpus", str(processes), *argv])
        if status:
            raise RuntimeError(f"train_net.py --num-gpus {processes} exited with {status}")
    seconds = time.perf_counter() - start
    (metrics,) = json.loads((out / "protocol_results.json").read_text()).values()  # one test set
    metric = metrics["metric"]
    ok = math.isfinite(metric) and (out / "model_final.pth").is_file()
    return [Row(name, "pass" if ok else "fail", f"{seconds:.1f} s",
                f"{ctx.sizes.group_iters} iterations + evaluation, metric {metric:.1f}",
                {"seconds": round(seconds, 2), "metric": metric})]


# -- the run --------------------------------------------------------------------------------


def run_checks(ctx: Context) -> list[Row]:
    """Every check after the data, in order; a check that raises becomes a failed row with
    its error, and the checks after it still run where they can."""
    steps: list[tuple[str, Callable[[], list[Row]]]] = []
    for arch in ("baseline", "cift"):
        for amp in (False, True):
            steps.append((f"train {arch} {'amp' if amp else 'fp32'}",
                          lambda arch=arch, amp=amp: check_training(ctx, arch, amp)))
    rows: list[Row] = []
    steps += [(f"amp speed-up {arch}", lambda arch=arch: check_amp_speedup(ctx, arch, rows))
              for arch in ("baseline", "cift")]
    steps += [("evaluate", lambda: check_evaluation(ctx)),
              ("group 1", lambda: check_group(ctx, 1)),
              ("group 2", lambda: check_group(ctx, 2))]
    for name, check in steps:
        print(f"== gpu_check: {name}", flush=True)
        try:
            rows += check()
        except Exception as err:  # noqa: BLE001  reported as the check's failure
            text = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            rows.append(Row(name, "fail", "error", text))
            release_memory()
    return rows


def time_row(ctx: Context) -> Row:
    """Seconds since the script started; a check against the loan's budget at full size."""
    seconds = time.perf_counter() - STARTED
    status = ("pass" if seconds <= BUDGET_S else "fail") if ctx.sizes == FULL else "info"
    return Row("total time", status, f"{seconds:.0f} s",
               f"budget {BUDGET_S:.0f} s on one GPU, imports and CUDA start included",
               {"seconds": round(seconds, 1)})


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True,
                        help=f"folder for {RESULTS_FILE} (small: the table and its figures)")
    parser.add_argument("--work", default=str(ROOT / "logs" / "gpu-check"),
                        help="folder for the data set and the training runs (default "
                             "logs/gpu-check)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes and a few iterations (the CPU dry run)")
    parser.add_argument("--workers", type=int, default=8,
                        help="train and test loader workers (DATALOADER.NUM_WORKERS)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU is visible (torch {torch.__version__}); nothing checked "
              "(the CPU dry run: --device cpu --tiny)", file=sys.stderr)
        return 2
    if args.device == "cpu" and torch.cuda.is_available():
        # the loaders, launcher and process groups follow torch.cuda.is_available()
        print("gpu_check: --device cpu with a GPU visible: hide it (CUDA_VISIBLE_DEVICES=) "
              "for the CPU dry run", file=sys.stderr)
        return 2
    sizes = TINY if args.tiny else FULL
    ctx = Context(args.device, sizes, Path(args.work) / ("tiny" if args.tiny else "full"),
                  args.workers)
    print("== gpu_check: data", flush=True)
    try:
        rows = check_data(ctx)
    except CiftInputError as err:
        print(f"gpu_check: {err}", file=sys.stderr)
        return 2
    rows += run_checks(ctx)
    rows.append(time_row(ctx))
    failed = first_failure(rows)
    report = {"command": sys.argv, "environment": environment(ctx),
              "first_failure": failed.check if failed else None,
              "rows": [asdict(r) for r in rows]}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, RESULTS_FILE)
    atomic_write_json(path, report)
    print(json.dumps(report["environment"]))
    print(format_table(rows))
    if failed:
        print(f"gpu_check: first failure: {failed.check}: {failed.value}; {failed.detail}")
        return 1
    print(f"gpu_check: every check passed ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

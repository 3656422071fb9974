#!/usr/bin/env python
"""Median training-step time of CIFT vs VIBaseline (same backbone, input size and batch).

    .venv/bin/python bench/train_step.py                       # demo backbone, CPU
    .venv/bin/python bench/train_step.py --depth 50x --size 288 144 --batch 64 --device cuda
    .venv/bin/python bench/train_step.py --against ../other-checkout   # CIFT here vs there

A step is forward, backward and an SGD update on a random [P x K visible ; P x K infrared]
batch. Both models are timed in the same process, alternating, after warm-up steps.

With --against DIR, CIFT of this checkout and CIFT of the checkout at DIR (the same model, seed
and batch, each tree's own code) run in two processes that take one step in turn, the first
of each pair alternating; the ratio of each pair of steps, taken seconds apart, is immune to a
shared machine's drift, and their median is printed, for wall-clock and for CPU time.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def import_cift(root: Path):
    """`cift` of the checkout at `root` and fastreid's build_model."""
    sys.path.insert(0, str(root / "projects" / "CIFT"))
    import cift  # first: patches fastreid, registers the models

    # isort: split
    from fastreid.modeling.meta_arch import build_model

    assert Path(cift.__file__).resolve().is_relative_to(root.resolve()), cift.__file__
    return cift.load_config, build_model


def make_model(meta_arch: str, args, root: Path = ROOT) -> torch.nn.Module:
    load_config, build_model = import_cift(root)
    cfg = load_config(str(root / "configs/Demo/baseline_synthetic.yml"), [
        "MODEL.META_ARCHITECTURE", meta_arch, "MODEL.DEVICE", args.device,
        "MODEL.BACKBONE.DEPTH", args.depth, "MODEL.BACKBONE.FEAT_DIM",
        "512" if args.depth in ("18x", "34x") else "2048",
        "MODEL.HEADS.NUM_CLASSES", str(args.classes), "SOLVER.IMS_PER_BATCH", str(args.batch)])
    torch.manual_seed(0)
    return build_model(cfg).train()


def make_batch(args, device: str) -> dict:
    p_k = args.batch // 2
    pids = torch.arange(p_k // 4).repeat_interleave(4).repeat(2)
    return {"images": torch.rand(args.batch, 3, *args.size, device=device) * 255,
            "targets": pids.to(device), "is_visible": (torch.arange(args.batch) < p_k).to(device)}


def step(model, optimizer, batch) -> None:
    optimizer.zero_grad()
    sum(model(batch).values()).backward()
    optimizer.step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def serve_steps(args) -> None:
    """--worker ROOT: CIFT of the checkout at ROOT; one timed step per line read from stdin,
    its wall-clock and CPU seconds written to stdout."""
    model = make_model("CIFT", args, Path(args.worker))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    torch.manual_seed(1)
    batch = make_batch(args, args.device)
    print("ready", flush=True)
    for _ in sys.stdin:
        wall, cpu = time.perf_counter(), time.process_time()
        step(model, optimizer, batch)
        print(time.perf_counter() - wall, time.process_time() - cpu, flush=True)


def against(args, other: Path) -> None:
    """CIFT here vs CIFT at `other`, one step each in turn (see the module docstring)."""
    common = ["--depth", args.depth, "--size", *map(str, args.size), "--batch", str(args.batch),
              "--classes", str(args.classes), "--device", args.device]
    workers = {name: subprocess.Popen(
        [sys.executable, __file__, "--worker", str(root), *common], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, bufsize=1) for name, root in (("this", ROOT),
                                                                         ("other", other))}
    for worker in workers.values():
        assert worker.stdout.readline().strip() == "ready"
    times = {(name, clock): [] for name in workers for clock in ("wall", "cpu")}
    for i in range(args.warmup + args.steps):
        order = list(workers) if i % 2 == 0 else list(workers)[::-1]
        for name in order:
            workers[name].stdin.write("step\n")
            wall, cpu = map(float, workers[name].stdout.readline().split())
            if i >= args.warmup:
                times[name, "wall"].append(wall)
                times[name, "cpu"].append(cpu)
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    print(f"device={args.device} depth={args.depth} size={tuple(args.size)} batch={args.batch} "
          f"steps={args.steps}; this={ROOT} other={other}")
    for clock in ("wall", "cpu"):  # CPU time: less shaken by other jobs on a shared machine
        ratios = [t / o for t, o in zip(times["this", clock], times["other", clock], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        this, that = (statistics.median(times[name, clock]) * 1e3 for name in workers)
        print(f"{clock:4s}: CIFT median step this {this:.1f} ms, other {that:.1f} ms; this / "
              f"other per step pair: median {statistics.median(ratios):.3f} (quartiles "
              f"{q1:.3f}, {q3:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", default="18x")
    parser.add_argument("--size", type=int, nargs=2, default=[96, 48])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--against", metavar="DIR",
                        help="time CIFT of this checkout against CIFT of the checkout at DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # child of --against: its checkout
    args = parser.parse_args()
    if args.worker:
        return serve_steps(args)
    if args.against:
        return against(args, Path(args.against))
    models = {name: make_model(name, args) for name in ("VIBaseline", "CIFT")}
    optimizers = {n: torch.optim.SGD(m.parameters(), lr=1e-3) for n, m in models.items()}
    batch = make_batch(args, args.device)
    times = {name: [] for name in models}
    for i in range(args.warmup + args.steps):
        for name, model in models.items():
            start = time.perf_counter()
            step(model, optimizers[name], batch)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"device={args.device} threads={torch.get_num_threads()} depth={args.depth} "
          f"size={tuple(args.size)} batch={args.batch} steps={args.steps}")
    for name, value in median.items():
        print(f"{name:10s} median step {value * 1000:.1f} ms")
    print(f"CIFT / VIBaseline = {median['CIFT'] / median['VIBaseline']:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()

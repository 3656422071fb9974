#!/usr/bin/env python
"""Median training-step time of CIFT vs VIBaseline (same backbone, input size and batch).

    .venv/bin/python bench/train_step.py                       # demo backbone, CPU
    .venv/bin/python bench/train_step.py --depth 50x --size 288 144 --batch 64 --device cuda

A step is forward, backward and an SGD update on a random [P x K visible ; P x K infrared]
batch. Both models are timed in the same process, alternating, after warm-up steps.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "projects" / "CIFT"))

from cift import load_config  # noqa: E402  first: patches fastreid, registers the models

# isort: split
from fastreid.modeling.meta_arch import build_model  # noqa: E402


def make_model(meta_arch: str, args) -> torch.nn.Module:
    cfg = load_config(str(ROOT / "configs/Demo/baseline_synthetic.yml"), [
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
    args = parser.parse_args()
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

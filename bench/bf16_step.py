#!/usr/bin/env python
"""Training-step time on the CPU in float32 against bfloat16 autocast with channels-last.

    .venv/bin/python bench/bf16_step.py                     # the demo's model, input and batch
    .venv/bin/python bench/bf16_step.py --model CIFT --steps 10

bfloat16 pays off on CPUs whose oneDNN kernels run it natively (AMX or AVX-512 BF16); on the
others it is emulated and slower. The demo trains in float32; this says whether that is still
the right choice on a given CPU. Each step: forward, backward and an SGD update (see
train_step.py); the variants alternate in one process after warm-up steps.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_step, beside this file

from train_step import ROOT, make_batch, make_model, step  # noqa: E402

from cift import load_config  # noqa: E402


def main() -> None:
    demo = load_config(str(ROOT / "configs/Demo/baseline_synthetic.yml"))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="VIBaseline", choices=("VIBaseline", "CIFT"))
    parser.add_argument("--size", type=int, nargs=2, default=list(demo.INPUT.SIZE_TRAIN))
    parser.add_argument("--batch", type=int, default=demo.SOLVER.IMS_PER_BATCH)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    args.depth, args.classes, args.device = demo.MODEL.BACKBONE.DEPTH, 100, "cpu"
    variants = {"float32": (False, torch.contiguous_format),
                "bfloat16 + channels-last": (True, torch.channels_last)}
    models, batches, optimizers = {}, {}, {}
    for name, (_, memory_format) in variants.items():
        models[name] = make_model(args.model, args).to(memory_format=memory_format)
        optimizers[name] = torch.optim.SGD(models[name].parameters(), lr=1e-3)
        batch = make_batch(args, "cpu")
        batch["images"] = batch["images"].contiguous(memory_format=memory_format)
        batches[name] = batch
    times = {name: [] for name in variants}
    for i in range(args.warmup + args.steps):
        for name, (bf16, _) in variants.items():
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                step(models[name], optimizers[name], batches[name])
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"{args.model} {args.depth} size={tuple(args.size)} batch={args.batch} "
          f"threads={torch.get_num_threads()} cpu={torch.backends.cpu.get_cpu_capability()} "
          f"native bf16={native}")
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, value in median.items():
        print(f"{name:26s} median step {value * 1000:.1f} ms")
    print(f"bfloat16 / float32 = {median['bfloat16 + channels-last'] / median['float32']:.2f}")


if __name__ == "__main__":
    main()

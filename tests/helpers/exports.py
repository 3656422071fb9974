"""Model-zoo export helpers: tiny models with random weights and BatchNorm statistics, training
run folders as CIFTTrainer leaves them, random test images, and tools/export_model.py's CLI."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from fastreid.modeling.meta_arch import build_model

from cift.config import load_config
from cift.engine.checkpoint import AtomicCheckpointer
from cift.evaluation.report import RESULTS_FILE
from helpers import DEMO, DEMO_CIFT, load_script
from helpers.runs import TINY

CONFIGS = {"CIFT": DEMO_CIFT, "VIBaseline": DEMO}
NUM_CLASSES = 6
RESULTS = {"SyntheticVI": {"CIFT": {"all-single": {"R1": 12.5, "mAP": 20.0}}, "metric": 20.0}}

export_model = load_script("projects/CIFT/tools/export_model.py")


def trained_like(arch: str, seed: int = 0) -> torch.nn.Module:
    """A tiny model with random weights and random BatchNorm statistics (so that buffers that
    failed to travel would change the features)."""
    cfg = load_config(CONFIGS[arch], [*TINY, "MODEL.HEADS.NUM_CLASSES", str(NUM_CLASSES)])
    torch.manual_seed(seed)
    model = build_model(cfg)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def write_run(run: Path, model: torch.nn.Module, name: str = "model_final",
              opts: tuple = ()) -> Path:
    """A training run's folder as CIFTTrainer leaves it: checkpoint with optimizer state and
    counters, last_checkpoint, protocol_results.json, config.yaml (NUM_CLASSES filled in)."""
    run.mkdir(parents=True, exist_ok=True)
    arch = type(model).__name__
    cfg = load_config(CONFIGS[arch], [*TINY, "MODEL.HEADS.NUM_CLASSES", str(NUM_CLASSES),
                                      "OUTPUT_DIR", str(run), *opts])
    (run / "config.yaml").write_text(cfg.dump())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    AtomicCheckpointer(model, str(run), optimizer=optimizer).save(name, epoch=1)
    (run / RESULTS_FILE).write_text(json.dumps(RESULTS))
    return run / f"{name}.pth"


def images(n: int = 3, seed: int = 1) -> torch.Tensor:
    """n random 32x16 images on fastreid's 0-255 scale."""
    return torch.rand(n, 3, 32, 16, generator=torch.Generator().manual_seed(seed)) * 255



def export(weights, out, *extra, arch: str = "CIFT") -> int:
    """tools/export_model.py of `weights` into `out`; returns its exit code."""
    return export_model.run(["--config-file", CONFIGS[arch], *TINY, "MODEL.WEIGHTS",
                             str(weights), "--output", str(out), *extra])

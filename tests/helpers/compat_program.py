"""Test helper (run as a script by tests/test_compat.py): each shim of `cift.compat` against the
fastreid behaviour it fixes, in fresh processes.

    python tests/helpers/compat_program.py WORKDIR CASES_JSON

CASES_JSON is {SKIP: [behaviour, ...]}: for each SKIP (a shim's name, or "-" for none) a forked
child applies every shim but SKIP, runs the behaviours (functions of this module) and writes
{"apply_errors": [...], behaviour: {"value": ...} or {"error": "Type: message", "traceback":
...}} to WORKDIR/result-SKIP.json. The parent imports the heavy third-party modules once before
forking; fastreid, which the shims patch, is imported only by the children.

compat.py is loaded without the `cift` package, because importing it would apply every shim:
as a module of a stand-in package over the same folder, whose empty __init__ lets compat import
its siblings (errors, fastreid_private).
"""
import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import traceback
import types

_cift = importlib.util.find_spec("cift")  # finds the package without running its __init__
_package = types.ModuleType("cift_compat_probe")
_package.__path__ = [str(pathlib.Path(_cift.origin).parent)]
sys.modules["cift_compat_probe"] = _package  # so that spawned processes can unpickle its names
compat = importlib.import_module("cift_compat_probe.compat")
SKIP, WORKDIR = "", pathlib.Path(".")


def apply_all_but(skip: str) -> list[str]:
    errors = []
    for shim in compat.SHIMS:
        if shim.__name__ != skip:
            try:
                shim()
            except Exception as err:  # without the import shims the later ones cannot apply
                errors.append(f"{shim.__name__}: {type(err).__name__}: {err}")
    return errors


def import_fastreid_data():
    import fastreid.data  # noqa: F401
    return "imported"


def import_collections_users():
    import fastreid.data.build  # noqa: F401
    import fastreid.evaluation.testing  # noqa: F401
    return "imported"


def default_device():
    from fastreid.config import get_cfg
    return get_cfg().MODEL.DEVICE


def test_loader():
    import torch
    from fastreid.data import build_reid_test_loader

    class Tiny(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"images": torch.full((3, 4, 2), float(i)), "targets": i, "camids": 0,
                    "img_paths": f"{i}.jpg"}

    loader, num_query = build_reid_test_loader(test_set=Tiny(), test_batch_size=2,
                                               num_query=1, num_workers=0)
    return {"num_query": num_query,
            "targets": [b["targets"].tolist() for b in loader],
            "images": [b["images"][:, 0, 0, 0].tolist() for b in loader]}


def reid_evaluator():
    # Never let fastreid run `make` in site-packages: record the call and report a failed build.
    made = []

    def failed_build(cmd, *args, **kwargs):
        made.append(cmd)
        return subprocess.CompletedProcess(cmd, 2)

    subprocess.run = failed_build
    from fastreid.config import get_cfg
    from fastreid.evaluation import ReidEvaluator
    ReidEvaluator(get_cfg(), num_query=1)
    return {"make_calls": made}


def jaccard_rerank():
    import numpy as np
    import torch
    from fastreid.utils.compute_dist import build_dist
    gen = torch.Generator().manual_seed(0)
    q, g = torch.randn(3, 8, generator=gen), torch.randn(5, 8, generator=gen)
    dist = build_dist(q, g, metric="jaccard", k1=3, k2=2)
    return {"shape": list(dist.shape), "finite": bool(np.isfinite(dist).all()),
            "min": float(dist.min()), "max": float(dist.max())}


def ddp_on_cpu():
    import torch
    import torch.distributed as dist
    from fastreid.engine import defaults
    dist.init_process_group("gloo", init_method=(WORKDIR / f"rdzv-{SKIP}").as_uri(),
                            world_size=1, rank=0)
    try:
        model = defaults.DistributedDataParallel(torch.nn.Linear(2, 3), device_ids=[0],
                                                 broadcast_buffers=False)
        return list(model(torch.ones(4, 2)).shape)
    finally:
        dist.destroy_process_group()


def record_rank(out: str) -> None:
    """What each process `launch_two` starts runs: writes comm.get_world_size() into a file
    named after its rank. (Pickled as `__main__.record_rank`; a spawned process runs this
    program as its main module.)"""
    from fastreid.utils import comm
    with open(os.path.join(out, f"rank{comm.get_rank()}"), "w") as f:
        f.write(str(comm.get_world_size()))


def launch_two():
    from fastreid.engine import launch  # fastreid.engine re-exports the function

    out = WORKDIR / f"ranks-{SKIP}"
    out.mkdir()
    launch(record_rank, 2, dist_url="auto", args=(str(out),))
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


def sgd_steps():
    import torch
    from fastreid.config import get_cfg
    from fastreid.engine.defaults import DefaultTrainer
    cfg = get_cfg()
    cfg.SOLVER.OPT, cfg.SOLVER.BASE_LR, cfg.SOLVER.MOMENTUM = "SGD", 0.5, 0.0
    cfg.SOLVER.WEIGHT_DECAY = cfg.SOLVER.WEIGHT_DECAY_NORM = cfg.SOLVER.WEIGHT_DECAY_BIAS = 0.0
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    optimizer, _ = DefaultTrainer.build_optimizer(cfg, model)
    for _ in range(2):  # fastreid's SimpleTrainer.run_step: zero_grad, backward, step
        optimizer.zero_grad()
        model(torch.tensor([[1.0, -2.0]])).sum().backward()
        optimizer.step()
    return model.weight.detach().flatten().tolist()


def repeated_metric_write():
    import logging

    from fastreid.utils.events import CommonMetricPrinter, EventStorage
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("fastreid.utils.events")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    printer = CommonMetricPrinter(max_iter=10)
    with EventStorage(start_iter=2) as storage:  # no iteration times recorded yet
        storage.epoch = 0
        storage.put_scalar("loss", 1.0)
        printer.write()  # end of an epoch
        printer.write()  # end of training, same iteration
    return len(lines)


def fastreid_train_loader_with_cift_sampler():
    from fastreid.config import get_cfg
    from fastreid.data import build_reid_train_loader
    cfg = get_cfg()
    cfg.DATASETS.NAMES = ()
    cfg.DATALOADER.SAMPLER_TRAIN = "CrossModalityIdentitySampler"
    build_reid_train_loader(cfg)
    return "built"


def setup_with_empty_output_dir():
    import argparse

    from fastreid.config import get_cfg
    from fastreid.engine.defaults import default_setup
    cfg = get_cfg()
    cfg.OUTPUT_DIR = ""
    empty = WORKDIR / f"empty-output-{SKIP}"
    empty.mkdir()
    os.chdir(empty)
    try:
        default_setup(cfg, argparse.Namespace(config_file=""))
    finally:
        os.chdir(WORKDIR)
    return sorted(os.listdir(empty))  # nothing written where the run started


def run(skip: str, behaviours: list[str]) -> None:
    global SKIP
    SKIP = skip
    sys.argv[1:] = [str(WORKDIR), skip]  # read again by the processes `launch` spawns
    results = {"apply_errors": apply_all_but(skip)}
    for name in behaviours:
        try:
            results[name] = {"value": globals()[name]()}
        except BaseException as err:  # SystemExit included: fastreid exits on a failed build
            results[name] = {"error": f"{type(err).__name__}: {err}",
                             "traceback": traceback.format_exc()}
    (WORKDIR / f"result-{skip}.json").write_text(json.dumps(results))


def preload_third_party() -> None:
    """Import what fastreid needs (but not fastreid) once, before forking the children."""
    import cv2  # noqa: F401
    import faiss  # noqa: F401
    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import tabulate  # noqa: F401
    import termcolor  # noqa: F401
    import torch  # noqa: F401
    import torch.distributed  # noqa: F401
    import torch.utils.tensorboard  # noqa: F401
    import torchvision  # noqa: F401
    import yacs.config  # noqa: F401


def main(workdir: str, cases_json: str) -> None:
    global WORKDIR
    preload_third_party()
    assert "fastreid" not in sys.modules and "torch._six" not in sys.modules
    WORKDIR = pathlib.Path(workdir)
    children = []
    for skip, behaviours in json.loads(cases_json).items():
        pid = os.fork()
        if pid == 0:
            try:
                run(skip, behaviours)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__mp_main__":  # a process spawned by launch(): patch as its parent did
    WORKDIR, SKIP = pathlib.Path(sys.argv[1]), sys.argv[2]
    apply_all_but(SKIP)
elif __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Tests of `cift.compat`: every shim fixes a fastreid 1.4.0 behaviour that breaks without it,
`apply()` is idempotent, and `import cift` registers every component.

Shims patch process-global state, so the behaviours run outside this process (PROBE below):
once with every shim, and once per shim with all the others. The probe loads compat.py on its
own, because importing the `cift` package would apply every shim.
"""
from __future__ import annotations

import collections
import collections.abc
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.modeling.heads import REID_HEADS_REGISTRY
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

from cift import compat

# `python probe.py WORKDIR CASES_JSON`, CASES_JSON = {SKIP: [behaviour, ...]}: for each SKIP (a
# shim's name, or "-" for none) a forked child applies every shim but SKIP, runs the behaviours
# and writes {"apply_errors": [...], behaviour: {"value": ...} or {"error": "Type: message",
# "traceback": ...}} to WORKDIR/result-SKIP.json. The parent imports the heavy third-party
# modules once before forking; fastreid, which the shims patch, is imported only by children.
PROBE = r'''
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import traceback

_cift = importlib.util.find_spec("cift")  # finds the package without running its __init__
_spec = importlib.util.spec_from_file_location(
    "cift_compat_probe", pathlib.Path(_cift.origin).parent / "compat.py")
compat = importlib.util.module_from_spec(_spec)
sys.modules["cift_compat_probe"] = compat  # so that spawned processes can unpickle its names
_spec.loader.exec_module(compat)
SKIP, WORKDIR = "", pathlib.Path(".")


def apply_all_but(skip):
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


def launch_two():
    from fastreid.engine import launch  # fastreid.engine re-exports the function

    import launch_target
    out = WORKDIR / f"ranks-{SKIP}"
    out.mkdir()
    launch(launch_target.record_rank, 2, dist_url="auto", args=(str(out),))
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


def run(skip, behaviours):
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


if __name__ == "__mp_main__":  # a process spawned by launch(): patch as its parent did
    WORKDIR, SKIP = pathlib.Path(sys.argv[1]), sys.argv[2]
    apply_all_but(SKIP)
elif __name__ == "__main__":
    import cv2, faiss, numpy, PIL.Image, sklearn.metrics, tabulate, termcolor  # noqa
    import torch, torch.distributed, torch.utils.tensorboard, torchvision, yacs.config  # noqa
    assert "fastreid" not in sys.modules and "torch._six" not in sys.modules
    WORKDIR = pathlib.Path(sys.argv[1])
    children = []
    for skip, behaviours in json.loads(sys.argv[2]).items():
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
'''

# Imported by the processes `launch` spawns (they find it through PYTHONPATH).
LAUNCH_TARGET = '''
import os


def record_rank(out):
    from fastreid.utils import comm
    with open(os.path.join(out, f"rank{comm.get_rank()}"), "w") as f:
        f.write(str(comm.get_world_size()))
'''

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(),
                             reason="this shim only changes anything without CUDA")
# torch's error for a CUDA call: "Found no NVIDIA driver..." or "Torch not compiled with CUDA..."
CUDA_ERROR = "NVIDIA|CUDA"

# shim -> (behaviour it fixes, marks, what happens without the shim: {"error": a regular
# expression the error matches} or {"value": the wrong value returned})
CASES = {
    "provide_torch_six": ("import_fastreid_data", (),
                          {"error": "No module named 'torch._six'"}),
    "restore_collections_abc_aliases": ("import_collections_users", (),
                                        {"error": "cannot import name 'Mapping'"}),
    "default_device_from_hardware": ("default_device", (NO_CUDA,), {"value": "cuda"}),
    "cpu_safe_dataloader": ("test_loader", (NO_CUDA,), {"error": CUDA_ERROR}),
    "skip_cython_build": ("reid_evaluator", (), {"error": "SystemExit: 1"}),
    "cpu_safe_rerank": ("jaccard_rerank", (NO_CUDA,), {"error": CUDA_ERROR}),
    "cpu_safe_ddp": ("ddp_on_cpu", (), {"error": "device_ids"}),
    "cpu_safe_launch": ("launch_two", (NO_CUDA,), {"error": "cuda is not available"}),
    # ContiguousParams: the optimizer never sees a gradient, the weights stay at zero
    "plain_optimizer_params": ("sgd_steps", (), {"value": [0.0, 0.0]}),
    "metric_printer_tolerates_repeated_writes": ("repeated_metric_write", (),
                                                 {"error": "ZeroDivisionError"}),
    "refuse_vi_data_in_fastreid_train_loader": ("fastreid_train_loader_with_cift_sampler", (),
                                                {"error": "Unknown training sampler"}),
}
IMPORT_SHIMS = ("provide_torch_six", "restore_collections_abc_aliases")


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run PROBE once with every shim ("-") and once without each shim; results by SKIP."""
    workdir = tmp_path_factory.mktemp("compat")
    (workdir / "probe.py").write_text(PROBE)
    (workdir / "launch_target.py").write_text(LAUNCH_TARGET)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(workdir)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    cases = {"-": [behaviour for behaviour, _, _ in CASES.values()]}
    cases.update({shim: [behaviour] for shim, (behaviour, _, _) in CASES.items()})
    proc = subprocess.run([sys.executable, str(workdir / "probe.py"), str(workdir),
                           json.dumps(cases)], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    results = {}
    for skip in cases:
        result_file = workdir / f"result-{skip}.json"
        assert result_file.is_file(), f"probe {skip} died:\n{proc.stdout}\n{proc.stderr}"
        results[skip] = json.loads(result_file.read_text())
    return results


def value_with_every_shim(probes: dict[str, dict], behaviour: str):
    result = probes["-"][behaviour]
    assert "error" not in result, result.get("traceback")
    return result["value"]


def test_every_shim_has_a_case() -> None:
    assert [shim.__name__ for shim in compat.SHIMS] == list(CASES)
    assert compat.SHIMS[:2] == (compat.provide_torch_six,
                                compat.restore_collections_abc_aliases)  # needed by the rest


def test_probe_applies_every_shim(probes: dict[str, dict]) -> None:
    assert probes["-"]["apply_errors"] == []
    for shim in CASES:
        if shim not in IMPORT_SHIMS:
            assert probes[shim]["apply_errors"] == [], shim


@pytest.mark.parametrize("shim", [pytest.param(name, marks=marks)
                                  for name, (_, marks, _) in CASES.items()])
def test_behaviour_breaks_without_shim(probes: dict[str, dict], shim: str) -> None:
    behaviour, _, expected = CASES[shim]
    result = probes[shim][behaviour]
    if "value" in expected:
        assert result == expected
    else:
        assert "error" in result, f"{behaviour} works without {shim}: {result}"
        assert re.search(expected["error"], result["error"]), result["traceback"]
    if shim in IMPORT_SHIMS:  # and nothing that touches fastreid.data could be patched
        assert any(e.startswith("cpu_safe_dataloader: ") for e in probes[shim]["apply_errors"])


def test_imports_work_with_shims(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "import_fastreid_data") == "imported"
    assert value_with_every_shim(probes, "import_collections_users") == "imported"


def test_default_device_follows_hardware(probes: dict[str, dict]) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert value_with_every_shim(probes, "default_device") == expected


def test_test_loader_yields_every_sample_once(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "test_loader") == {
        "num_query": 1, "targets": [[0, 1], [2]], "images": [[0.0, 1.0], [2.0]]}


def test_reid_evaluator_skips_the_cython_build(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "reid_evaluator") == {"make_calls": []}
    # without the shim fastreid ran its build (the probe's stand-in for `make` failed) and exited
    assert "in compile_helper" in probes["skip_cython_build"]["reid_evaluator"]["traceback"]


def test_jaccard_rerank_on_cpu(probes: dict[str, dict]) -> None:
    value = value_with_every_shim(probes, "jaccard_rerank")
    assert value["shape"] == [3, 5] and value["finite"]
    assert 0.0 <= value["min"] <= value["max"] <= 1.0  # Jaccard distances


def test_ddp_wraps_a_cpu_model(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "ddp_on_cpu") == [4, 3]


def test_sgd_updates_the_model(probes: dict[str, dict]) -> None:
    # two plain SGD steps, lr 0.5, on d(w . x)/dw = x = (1, -2)
    assert value_with_every_shim(probes, "sgd_steps") == [-1.0, 2.0]


def test_repeated_metric_write_prints_once(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "repeated_metric_write") == 1


def test_fastreid_train_loader_refuses_the_cross_modality_sampler(probes) -> None:
    result = probes["-"]["fastreid_train_loader_with_cift_sampler"]
    assert "CIFTTrainer" in result.get("error", ""), result
    assert len(result["error"].splitlines()) == 1


def test_launch_worker_is_patched_and_picklable() -> None:
    worker = sys.modules["fastreid.engine.launch"]._distributed_worker
    assert worker.__module__ == "cift.compat"
    assert pickle.loads(pickle.dumps(worker)) is worker  # mp.spawn pickles it by name


@NO_CUDA
def test_launch_runs_two_gloo_ranks(probes: dict[str, dict]) -> None:
    # each rank writes comm.get_world_size() into a file named after its rank
    assert value_with_every_shim(probes, "launch_two") == {"rank0": "2", "rank1": "2"}


def test_apply_runs_the_shims_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(compat, "SHIMS", (lambda: calls.append(1),))
    compat.apply()  # `import cift` already applied them
    assert calls == []
    monkeypatch.setattr(compat, "_APPLIED", False)
    compat.apply()
    compat.apply()
    assert calls == [1]


def test_shims_can_run_again_without_stacking() -> None:
    from fastreid.data import build, data_utils
    from fastreid.engine import defaults
    from fastreid.evaluation import reid_evaluation
    from fastreid.solver import build as solver_build
    from fastreid.utils import compute_dist, events

    for shim in compat.SHIMS:  # `import cift` ran them once already
        shim()
    wrapped = {
        "fastreid.data.data_utils": data_utils.DataLoaderX,
        "fastreid.utils.compute_dist": compute_dist.compute_jaccard_distance,
        "fastreid.solver.build": solver_build.build_optimizer,
        "fastreid.utils.events": events.CommonMetricPrinter.write,
        "fastreid.data.build": build.build_reid_train_loader,
    }
    for module, patched in wrapped.items():
        original = patched._cift_original  # one level of wrapping, around fastreid's own
        assert original.__module__ == module and not hasattr(original, "_cift_original")
    assert build.DataLoaderX is data_utils.DataLoaderX
    assert defaults.build_optimizer is solver_build.build_optimizer
    assert defaults.build_reid_train_loader is build.build_reid_train_loader
    assert reid_evaluation.compile_helper.__module__ == "cift.compat"
    assert defaults.DistributedDataParallel.__module__ == "cift.compat"
    assert sys.modules["torch._six"].string_classes == (str, bytes)
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        assert getattr(collections, name) is getattr(collections.abc, name)


@pytest.mark.parametrize("registry, name, module", [
    (META_ARCH_REGISTRY, "VIBaseline", "cift.modeling"),
    (META_ARCH_REGISTRY, "CIFT", "cift.modeling"),
    (REID_HEADS_REGISTRY, "BNNeckHead", "cift.modeling"),
    (DATASET_REGISTRY, "SYSUMM01", "cift.data.datasets"),
    (DATASET_REGISTRY, "SyntheticVI", "cift.data.datasets"),
    (DATASET_REGISTRY, "RegDB", "cift.data.datasets"),
    (DATASET_REGISTRY, "LLCM", "cift.data.datasets"),
])
def test_import_cift_registers(registry, name: str, module: str) -> None:
    assert registry.get(name).__module__.startswith(module + ".")


def test_import_without_fastreid_says_how_to_install(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import json, sys
        sys.modules["fastreid"] = None  # as if it were not installed
        try:
            import cift  # noqa: F401
        except ImportError as err:
            print(json.dumps({"message": str(err), "chained": err.__cause__ is not None
                              or not err.__suppress_context__}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "\n" not in result["message"]
    assert "pip install --no-deps fastreid==1.4.0" in result["message"]
    assert not result["chained"]  # one line, not a traceback of the failed import

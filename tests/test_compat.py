"""Tests of `cift.compat`: every shim fixes a fastreid 1.4.0 behaviour that breaks without it,
`apply()` is idempotent, and `import cift` registers every component.

Shims patch process-global state, so the behaviours run outside this process, in
tests/helpers/compat_program.py: once with every shim, and once per shim with all the others. The
program loads compat.py without the `cift` package, because importing it would apply every shim.
"""
from __future__ import annotations

import collections
import collections.abc
import json
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
from helpers import ROOT

# Run as a script, once with every shim and once per shim with all the others (see its docstring).
PROGRAM = ROOT / "tests/helpers/compat_program.py"

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
    "setup_without_output_dir": ("setup_with_empty_output_dir", (),
                                 {"error": "FileNotFoundError"}),
}
IMPORT_SHIMS = ("provide_torch_six", "restore_collections_abc_aliases")


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run PROGRAM once with every shim ("-") and once without each shim; results by SKIP."""
    workdir = tmp_path_factory.mktemp("compat")
    cases = {"-": [behaviour for behaviour, _, _ in CASES.values()]}
    cases.update({shim: [behaviour] for shim, (behaviour, _, _) in CASES.items()})
    proc = subprocess.run([sys.executable, str(PROGRAM), str(workdir), json.dumps(cases)],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
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


def test_setup_with_an_empty_output_dir_writes_nothing(probes: dict[str, dict]) -> None:
    assert value_with_every_shim(probes, "setup_with_empty_output_dir") == []


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

"""Two CPU processes (gloo on loopback) train and evaluate CIFT: fastreid-style spawning with
--num-gpus 2 and torchrun-style environment variables; the per-machine groups fastreid reads."""
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from cift.engine import launch
from helpers import DEMO_CIFT, ROOT
from helpers.runs import TINY as TRAIN_NET_TINY

# the end-to-end tests' tiny run, with a batch that splits into two ranks of P=2, K=4
TINY = [*TRAIN_NET_TINY, "SOLVER.IMS_PER_BATCH", "32", "SOLVER.ITERS_PER_EPOCH", "2",
        "TEST.IMS_PER_BATCH", "32", "MODEL.CIFT.CRI.SAMPLES", "2"]


def run(launcher: list[str], out: Path, datasets_root: Path, *flags: str
        ) -> subprocess.CompletedProcess:
    cmd = [*launcher, str(ROOT / "projects/CIFT/train_net.py"), "--config-file",
           DEMO_CIFT, *flags, *TINY, "OUTPUT_DIR", str(out)]
    env = {**os.environ, "FASTREID_DATASETS": str(datasets_root), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def check_run(result: subprocess.CompletedProcess, out: Path) -> None:
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    log = (out / "log.txt").read_text()
    assert "World size: 2" in log
    saved = json.loads((out / "protocol_results.json").read_text())["SyntheticVI"]
    assert set(saved) == {"CIFT", "CIFT\u2020", "metric"}
    assert set(saved["CIFT"]) == {"all-single", "all-multi", "indoor-single", "indoor-multi"}
    assert (out / "model_final.pth").is_file() and (out / "last_checkpoint").is_file()
    # rank 1 writes no checkpoints of its own: one file per name, all by rank 0
    assert sorted(p.name for p in out.glob("*.pth")) == [
        "model_0000.pth", "model_best.pth", "model_final.pth"]


def test_two_gloo_processes_spawned_by_num_gpus(datasets_root, tmp_path):
    out = tmp_path / "spawn"
    cmd = [sys.executable]
    result = run(cmd, out, datasets_root, "--num-gpus", "2", "--dist-url", "auto")
    check_run(result, out)


def test_two_processes_started_by_torchrun(datasets_root, tmp_path):
    out = tmp_path / "torchrun"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2"]
    check_run(run(launcher, out, datasets_root), out)


def test_local_process_group_is_the_one_fastreid_reads(monkeypatch) -> None:
    from fastreid.utils import comm

    made = []

    def new_group(ranks, timeout):
        made.append((ranks, timeout))
        return tuple(ranks)

    monkeypatch.setattr(launch.dist, "new_group", new_group)
    monkeypatch.setattr(comm, "_LOCAL_PROCESS_GROUP", None)
    launch.set_local_process_group(5, 2, 3, timedelta(seconds=9))  # rank 3 of 2 + 2 + 1
    assert made == [([0, 1], timedelta(seconds=9)), ([2, 3], timedelta(seconds=9)),
                    ([4], timedelta(seconds=9))]  # every rank creates every machine's group
    monkeypatch.setattr(comm.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(comm.dist, "get_world_size", lambda group=None: len(group))
    monkeypatch.setattr(comm.dist, "get_rank", lambda group=None: group.index(3))
    assert (comm.get_local_size(), comm.get_local_rank()) == (2, 1)

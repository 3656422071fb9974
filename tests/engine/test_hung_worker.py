"""A frozen rank (SIGSTOP) does not block the job forever: with a short DIST_TIMEOUT_S the
survivor's collective times out, the job ends with one line naming the silent rank, and the
spawner ends every process (two gloo processes on the CPU)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TIMEOUT_S = 6
JOB = textwrap.dedent("""
    import os, sys, time

    import cift  # noqa: F401
    import torch
    import torch.distributed as dist

    from cift.engine.launch import launch
    from cift.errors import CiftJobError, print_input_error


    def job(pid_dir):
        rank = dist.get_rank()
        x = torch.ones(1)
        dist.all_reduce(x)  # both ranks are up
        with open(os.path.join(pid_dir, f"rank{rank}.pid"), "w") as f:
            f.write(str(os.getpid()))
        while True:  # a training loop: one collective after another
            dist.all_reduce(x)
            time.sleep(0.02)


    if __name__ == "__main__":
        try:
            launch(job, 2, dist_url="auto", args=(sys.argv[1],), timeout_s=float(sys.argv[2]))
        except CiftJobError as err:
            sys.exit(print_input_error(err))
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a reaped-later zombie counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("frozen", [1, 0], ids=["rank1", "rank0-hosting-the-store"])
def test_frozen_rank_ends_the_job_with_one_line_naming_it(tmp_path, frozen):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(TIMEOUT_S)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    pids = {}
    try:
        deadline = time.time() + 120
        while len(pids) < 2 and time.time() < deadline and proc.poll() is None:
            for r in (0, 1):
                path = Path(tmp_path, f"rank{r}.pid")
                if path.is_file() and path.read_text():
                    pids[r] = int(path.read_text())
            time.sleep(0.2)
        assert len(pids) == 2, proc.communicate(timeout=5)
        time.sleep(0.5)
        os.kill(pids[frozen], signal.SIGSTOP)
        stopped = time.time()
        _, err = proc.communicate(timeout=TIMEOUT_S + 40)
        took = time.time() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, err[-3000:]
    assert len(lines) == 1, err[-3000:]
    survivor = 1 - frozen
    assert lines[0].startswith(f"error: rank {survivor}: rank {frozen} went silent"), lines
    assert "DIST_TIMEOUT_S" in lines[0]
    assert "Traceback" not in err, err[-3000:]
    assert TIMEOUT_S <= took < TIMEOUT_S + 40
    assert not any(alive(pid) for pid in pids.values())  # the spawner ended every process


def test_timeout_defaults_and_key(monkeypatch):
    from datetime import timedelta

    from cift.config import default_config
    from cift.engine import launch

    assert default_config().DIST_TIMEOUT_S == 0
    assert launch.dist_timeout(0, "gloo") == timedelta(minutes=5)
    assert launch.dist_timeout(0, "nccl") == timedelta(minutes=30)
    assert launch.dist_timeout(12.5, "nccl") == timedelta(seconds=12.5)
    # the torchrun path passes it to the process group (the spawned path: the test above)
    seen = {}
    monkeypatch.setattr(launch.dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setattr("cift.engine.launch.set_local_process_group", lambda *a: None)
    monkeypatch.setattr(launch.comm, "synchronize", lambda: None)
    monkeypatch.setattr(launch.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(launch.dist, "get_rank", lambda: 0)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    launch.join_torchrun_group(timedelta(seconds=7))
    assert seen["timeout"] == timedelta(seconds=7)


def test_worker_errors_come_back_as_one_exception():
    from cift.engine.launch import raised_error
    from cift.errors import CiftInputError, CiftJobError

    trace = ("Traceback (most recent call last):\n  File x\n"
             "cift.errors.CiftJobError: rank 0: rank 1 went silent\n")
    assert isinstance(raised_error(trace), CiftJobError)
    assert str(raised_error(trace)) == "rank 0: rank 1 went silent"
    assert isinstance(raised_error("...\ncift.errors.CiftInputError: X 1: bad\n"), CiftInputError)
    assert raised_error("...\nValueError: other\n") is None


def test_killed_worker_ends_the_job_in_one_line(tmp_path):
    """A rank killed outright (SIGKILL: an OOM kill, an NCCL watchdog abort) ends the job with
    one line naming it, not a ProcessExitedException traceback."""
    script = tmp_path / "job.py"
    loop = "        time.sleep(0.02)\n"
    assert loop in JOB
    script.write_text(JOB.replace(loop, loop + "        if rank == 1:\n"
                                  "            os.kill(os.getpid(), 9)\n"))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(TIMEOUT_S)],
                          capture_output=True, text=True, timeout=200,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # rank 0 may notice first (peer gone) or the spawner may (rank 1 died by a signal)
    assert lines[0].startswith(("error: rank 1: its process ended", "error: rank 0: rank 1")), lines


def test_heartbeat_thread_ends_before_the_process_does():
    """run_guarded stops the beating thread when the job returns: a daemon thread left inside
    the store's C++ code at interpreter exit aborts a finished process."""
    from datetime import timedelta

    from cift.engine.launch import Heartbeat, run_guarded

    class Store:
        def __init__(self):
            self.counts = {}

        def add(self, key, value):
            self.counts[key] = self.counts.get(key, 0) + value
            return self.counts[key]

    heartbeat = Heartbeat(Store(), rank=0, world_size=1, interval=0.05).start()
    assert heartbeat._thread.is_alive()
    assert run_guarded(lambda: 7, (), heartbeat, timedelta(seconds=1)) == 7
    assert not heartbeat._thread.is_alive()

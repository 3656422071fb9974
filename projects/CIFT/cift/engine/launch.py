"""launch(): multi-process training on one or several machines, GPU (NCCL) or CPU (gloo).

Two ways in:
- torchrun-style: the processes are already started and the environment holds RANK,
  WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE (plus MASTER_ADDR/MASTER_PORT); each process
  joins the group from the environment.
- `--num-gpus N [--num-machines M --machine-rank R --dist-url URL]`: N processes are spawned
  per machine (`spawn_workers`); each uses NCCL with one GPU, or gloo on the CPU.

Hung ranks: every collective waits at most DIST_TIMEOUT_S (`dist_timeout`). Each rank bumps a
counter in the rendezvous store from a daemon thread (`Heartbeat`); when a collective times out
the surviving rank looks at whose counter stopped and stops with one line naming that rank
(`CiftJobError`), and the spawner ends every process.
"""
from __future__ import annotations

import os
import pickle
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
from fastreid.utils import comm

from .. import fastreid_private
from ..errors import CiftInputError, CiftJobError

TORCHRUN_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
# seconds the spawner lets the other processes end by themselves after one failed
GRACE_S = 2.0
# Process-group timeout (DIST_TIMEOUT_S 0): a few minutes on the CPU, torch's 30 minutes (as
# fastreid gets) with NCCL.
DEFAULT_DIST_TIMEOUT_S = {"gloo": 300.0, "nccl": 1800.0}


# Process groups: this module's workers and fastreid's launch worker (patched by
# cift.compat.cpu_safe_launch) join them through these functions.

def dist_backend() -> str:
    """NCCL (one GPU per process) when CUDA is there, gloo on the CPU otherwise."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def dist_timeout(seconds: float = 0, backend_name: str | None = None) -> timedelta:
    """The process-group timeout: `seconds` (DIST_TIMEOUT_S), or the backend's default if 0."""
    if seconds < 0:
        raise CiftInputError(f"DIST_TIMEOUT_S {seconds!r}: expected seconds >= 0 (0 = default)")
    return timedelta(seconds=seconds or DEFAULT_DIST_TIMEOUT_S[backend_name or dist_backend()])


def set_local_process_group(world_size: int, local_size: int, rank: int,
                            timeout: timedelta) -> None:
    """Create every machine's group of `local_size` consecutive ranks (each rank must take
    part) and make this rank's the group fastreid's `get_local_rank` / `get_local_size` read."""
    for first in range(0, world_size, local_size):
        group = dist.new_group(list(range(first, min(first + local_size, world_size))),
                               timeout=timeout)
        if first <= rank < first + local_size:
            fastreid_private.set_local_process_group(group)


def join_process_group(init_method: str, local_rank: int, local_size: int, timeout: timedelta,
                       world_size: int | None = None, rank: int | None = None) -> None:
    """Join the job's process group (`dist_backend()`, GPU `local_rank` with CUDA) and set up
    fastreid's per-machine group of `local_size` processes. `world_size` / `rank` None: read
    from the environment (`init_method` "env://", as torchrun sets it)."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    given = {} if world_size is None else {"world_size": world_size, "rank": rank}
    dist.init_process_group(backend=dist_backend(), init_method=init_method, timeout=timeout,
                            **given)
    set_local_process_group(dist.get_world_size(), local_size, dist.get_rank(), timeout)


def join_spawned_group(local_rank: int, world_size: int, num_gpus_per_machine: int,
                       machine_rank: int, dist_url: str, timeout_s: float = 0) -> timedelta:
    """What a process spawned by a launcher does first: check that it has a GPU (with CUDA),
    join the group at `dist_url` as rank `machine_rank * num_gpus_per_machine + local_rank`
    with a `timeout_s` timeout (0: DEFAULT_DIST_TIMEOUT_S); returns that timeout."""
    if torch.cuda.is_available() and num_gpus_per_machine > torch.cuda.device_count():
        raise CiftInputError(f"--num-gpus {num_gpus_per_machine}: only "
                             f"{torch.cuda.device_count()} GPUs visible")
    timeout = dist_timeout(timeout_s)
    join_process_group(dist_url, local_rank, num_gpus_per_machine, timeout,
                       world_size=world_size,
                       rank=machine_rank * num_gpus_per_machine + local_rank)
    return timeout


def started_by_torchrun() -> bool:
    """True in a process started by torchrun (or anything that sets its variables)."""
    return all(key in os.environ for key in TORCHRUN_KEYS) and int(os.environ["WORLD_SIZE"]) > 1


class Heartbeat:
    """A counter per rank in the rendezvous store, bumped every `interval` seconds by a daemon
    thread; a frozen, hung or dead process stops bumping its own."""

    KEY = "cift/heartbeat/{}"

    def __init__(self, store, rank: int, world_size: int, interval: float):
        self.store, self.rank, self.world_size, self.interval = store, rank, world_size, interval
        self._thread = threading.Thread(target=self._beat, daemon=True, name="cift-heartbeat")
        self._stopped = threading.Event()

    def start(self) -> Heartbeat:
        self.store.add(self.KEY.format(self.rank), 1)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the beating thread and wait for it: a daemon thread still inside the store's C++
        code when the interpreter exits aborts the process ("terminate called without an active
        exception"), which made a finished job fail at exit now and then."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.store.add(self.KEY.format(self.rank), 1)
            except Exception:  # noqa: BLE001  the store is gone: the job is ending
                return

    def silent_ranks(self) -> list[int]:
        """Other ranks whose counter did not move over two intervals. When the store itself
        does not answer, the rank that hosts it (0) is the silent one."""
        result: list[list[int]] = []

        def probe() -> None:
            def counts():
                return [self.store.add(self.KEY.format(r), 0) for r in range(self.world_size)]
            before = counts()
            time.sleep(2 * self.interval)
            after = counts()
            result.append([r for r in range(self.world_size)
                           if r != self.rank and before[r] == after[r]])

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        thread.join(2 * self.interval + 3)
        if result:
            return result[0]
        return [] if self.rank == 0 else [0]


def heartbeat_interval(timeout: timedelta) -> float:
    return max(0.5, min(5.0, timeout.total_seconds() / 5))


def start_heartbeat(timeout: timedelta) -> Heartbeat:
    store = dist.distributed_c10d._get_default_store()  # the rendezvous store of the group
    return Heartbeat(store, dist.get_rank(), dist.get_world_size(),
                     heartbeat_interval(timeout)).start()


def run_guarded(main_func: Callable, args: tuple, heartbeat: Heartbeat, timeout: timedelta):
    """`main_func(*args)`; a collective that times out or loses a peer becomes one
    CiftJobError naming the silent rank(s)."""
    try:
        return main_func(*args)
    except dist.DistError as err:
        raise job_error(err, heartbeat, timeout) from None
    except RuntimeError as err:
        text = str(err).lower()
        if "timed out" not in text and "timeout" not in text:
            raise
        raise job_error(err, heartbeat, timeout) from None
    finally:  # after job_error has read the counters
        heartbeat.stop()


def job_error(err: BaseException, heartbeat: Heartbeat, timeout: timedelta) -> CiftJobError:
    silent = heartbeat.silent_ranks()
    seconds = f"{timeout.total_seconds():g} s (DIST_TIMEOUT_S)"
    if silent:
        who = ", ".join(str(r) for r in silent)
        return CiftJobError(f"rank {heartbeat.rank}: rank {who} went silent (stopped, hung or "
                            f"killed); a collective waited {seconds} for it; stopping the job")
    cause = " ".join(str(err).split())[:200]
    return CiftJobError(f"rank {heartbeat.rank}: a collective failed while every rank was alive "
                        f"(a step slower than {seconds}? raise DIST_TIMEOUT_S): {cause}")


def join_torchrun_group(timeout: timedelta | None = None) -> None:
    """Join the process group described by the torchrun variables and set up fastreid's
    per-machine group."""
    join_process_group("env://", int(os.environ["LOCAL_RANK"]),
                       int(os.environ["LOCAL_WORLD_SIZE"]), timeout or dist_timeout())
    comm.synchronize()


def spawned_worker(local_rank: int, main_func: Callable, world_size: int,
                   num_gpus_per_machine: int, machine_rank: int, dist_url: str, args: tuple,
                   timeout_s: float = 0) -> None:
    """One spawned process: NCCL and one GPU when CUDA is there, gloo on the CPU otherwise;
    joins the group, starts its heartbeat and runs `main_func(*args)` guarded."""
    timeout = join_spawned_group(local_rank, world_size, num_gpus_per_machine, machine_rank,
                                 dist_url, timeout_s)
    heartbeat = start_heartbeat(timeout)
    comm.synchronize()
    run_guarded(main_func, args, heartbeat, timeout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raised_error(text: str) -> BaseException | None:
    """The CiftInputError / CiftJobError whose traceback a worker left, as one exception."""
    last = text.strip().splitlines()[-1] if text.strip() else ""
    for cls in (CiftInputError, CiftJobError):
        prefix = f"{cls.__module__}.{cls.__name__}: "
        if last.startswith(prefix):
            return cls(last[len(prefix):])
    return None


def stop_processes(processes: list) -> None:
    """Give `processes` GRACE_S seconds to end, then kill (SIGKILL also ends a stopped process)
    and reap the others."""
    deadline = time.time() + GRACE_S
    while time.time() < deadline and any(p.is_alive() for p in processes):
        time.sleep(0.2)
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join()


def reported_error(error_file: str) -> BaseException:
    """The error a worker wrote to its torch error file (a pickled traceback text): its
    CiftInputError / CiftJobError as one exception, anything else as ProcessRaisedException."""
    import torch.multiprocessing as mp

    try:
        with open(error_file, "rb") as f:
            text = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        text = ""
    return raised_error(text) or mp.ProcessRaisedException(text or "a worker failed", 0, 0)


def spawn_workers(nprocs: int, args: tuple, machine_rank: int = 0) -> None:
    """Start `spawned_worker` in `nprocs` processes and wait. When one fails, the others get
    GRACE_S seconds to end, then are killed (SIGKILL also ends a stopped process); a worker's
    CiftInputError / CiftJobError is raised here as it was (one line), anything else as
    torch's ProcessRaisedException; a process that dies without one (a signal) as one
    CiftJobError naming its rank."""
    import torch.multiprocessing as mp

    context = mp.start_processes(spawned_worker, args=args, nprocs=nprocs, join=False,
                                 start_method="spawn")
    while True:
        try:
            if context.join(timeout=1, grace_period=GRACE_S):
                return
        except mp.ProcessRaisedException as err:
            raise raised_error(str(err)) or err from None
        except mp.ProcessExitedException as err:  # killed (an NCCL watchdog abort, OOM, ...)
            rank = machine_rank * nprocs + err.error_index
            raise CiftJobError(f"rank {rank}: its process ended without a Python error "
                               f"({err}); the other processes were stopped") from None
        # a worker that reported its error but does not exit (a destructor waiting on a frozen
        # peer) must not keep the job alive
        for path in context.error_files:
            if os.path.exists(path):
                stop_processes(context.processes)
                raise reported_error(path)


def launch(main_func: Callable, num_gpus_per_machine: int, num_machines: int = 1,
           machine_rank: int = 0, dist_url: str | None = None, args: tuple = (),
           timeout_s: float = 0):
    """Run `main_func(*args)` in every process of the job (see the module docstring);
    `timeout_s` is DIST_TIMEOUT_S (0: the backend's default)."""
    if started_by_torchrun():
        timeout = dist_timeout(timeout_s)
        join_torchrun_group(timeout)
        heartbeat = start_heartbeat(timeout)
        result = run_guarded(main_func, args, heartbeat, timeout)
        dist.destroy_process_group()  # not after a failure: it would wait for the silent rank
        return result
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        return main_func(*args)
    if dist_url == "auto" or dist_url is None:
        if num_machines > 1:
            raise CiftInputError("--dist-url auto: only for one machine; give tcp://HOST:PORT")
        dist_url = f"tcp://127.0.0.1:{free_port()}"
    spawn_workers(num_gpus_per_machine, (main_func, world_size, num_gpus_per_machine,
                                         machine_rank, dist_url, args, timeout_s),
                  machine_rank=machine_rank)

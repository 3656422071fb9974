"""launch(): multi-process training on one or several machines, GPU (NCCL) or CPU (gloo).

Two ways in:
- torchrun-style: the processes are already started and the environment holds RANK,
  WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE (plus MASTER_ADDR/MASTER_PORT); each process
  joins the group from the environment.
- `--num-gpus N [--num-machines M --machine-rank R --dist-url URL]`: fastreid's launch()
  spawns N processes per machine; `cift.compat.cpu_safe_launch` makes its workers use NCCL
  with one GPU each, or gloo on the CPU.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from fastreid.engine import launch as fastreid_launch
from fastreid.utils import comm

TORCHRUN_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


def started_by_torchrun() -> bool:
    """True in a process started by torchrun (or anything that sets its variables)."""
    return all(key in os.environ for key in TORCHRUN_KEYS) and int(os.environ["WORLD_SIZE"]) > 1


def join_torchrun_group() -> None:
    """Join the process group described by the torchrun variables and set up fastreid's
    per-machine group (comm.get_local_rank / get_local_size)."""
    local_rank, local_size = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    world, rank = dist.get_world_size(), dist.get_rank()
    for first in range(0, world, local_size):
        group = dist.new_group(list(range(first, min(first + local_size, world))))
        if first <= rank < first + local_size:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()


def launch(main_func: Callable, num_gpus_per_machine: int, num_machines: int = 1,
           machine_rank: int = 0, dist_url: str | None = None, args: tuple = ()):
    """Run `main_func(*args)` in every process of the job (see the module docstring)."""
    if started_by_torchrun():
        join_torchrun_group()
        try:
            return main_func(*args)
        finally:
            dist.destroy_process_group()
    return fastreid_launch(main_func, num_gpus_per_machine, num_machines=num_machines,
                           machine_rank=machine_rank, dist_url=dist_url, args=args)

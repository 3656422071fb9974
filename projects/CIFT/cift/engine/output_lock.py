"""One job per output folder: OUTPUT_DIR (a training run, an --eval-only folder, a search's
--output) must be a folder this user can write, and no other job may be writing into it.

The guard is an advisory lock (`fcntl.flock`) on `OUTPUT_DIR/.cift-lock`, taken before the job
writes anything and held by its main process until it exits: the kernel releases it when the
process ends, however it ends (a kill -9 included), so a lock is never stale. The file holds
the pid of the holder, which the refusal names. Forked children (data-loader workers) close
their copy of the descriptor, so that a worker outliving a killed main process for a moment
does not hold the lock.

:func:`check_output_dir` only looks (no file is created: for the input checks, which run
before anything is written); :func:`lock_output_dir` takes the lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os

from ..errors import CiftInputError

LOCK_NAME = ".cift-lock"

# (real path of the folder, descriptor) of the lock this process holds; a process runs one job
# at a time, so taking another folder's lock releases the previous one.
_held: tuple[str, int] | None = None


def _close_in_child() -> None:
    global _held
    if _held is not None:
        with contextlib.suppress(OSError):
            os.close(_held[1])
        _held = None


os.register_at_fork(after_in_child=_close_in_child)


def _holder(fd: int) -> str:
    """'pid N' read from an open lock file, or 'pid unknown'."""
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return f"pid {int(text)}"
    return "pid unknown"


def in_use_message(folder: str, key: str, holder: str) -> str:
    return (f"{key} {folder}: in use by another run ({holder}); wait for it to end, or choose "
            f"another {key}")


def _writable_folder(folder: str, key: str) -> None:
    """`folder` is a folder this process can write into, or a path whose nearest existing
    ancestor is one (it will be created); CiftInputError naming the path otherwise."""
    path = os.path.abspath(folder)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CiftInputError(f"{key} {folder}: not a folder (a file of that name exists)")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CiftInputError(f"{key} {folder}: cannot be created ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is" if existing == path else f"would be created in {existing}, which is"
        raise CiftInputError(f"{key} {folder}: {what} not writable by this user")


def check_output_dir(folder: str, key: str = "OUTPUT_DIR", lock: bool = True) -> None:
    """Refuse, without writing anything, an output folder that cannot be written (a file, or
    not writable) or, with `lock` (the process that will take the lock; another rank's would
    see its own job's), that another live job holds. An empty `folder` passes."""
    if not folder:
        return
    _writable_folder(folder, key)
    if not lock or (_held is not None and _held[0] == os.path.realpath(folder)):
        return
    try:
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDONLY)
    except OSError:
        return  # no lock file yet (or unreadable: lock_output_dir reports it)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CiftInputError(in_use_message(folder, key, _holder(fd))) from None
    except OSError:
        pass  # a file system without flock: lock_output_dir decides
    finally:
        os.close(fd)


def lock_output_dir(folder: str, key: str = "OUTPUT_DIR") -> None:
    """Create `folder` if needed and lock it for this process (until it exits or locks another
    folder); CiftInputError naming the folder when it cannot be written or another job holds
    it. An empty `folder` does nothing."""
    global _held
    if not folder:
        return
    real = os.path.realpath(folder)
    if _held is not None and _held[0] == real:
        return
    _writable_folder(folder, key)
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o666)
    except OSError as err:
        raise CiftInputError(f"{key} {folder}: cannot be written ({err.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise CiftInputError(in_use_message(folder, key, holder)) from None
    except OSError:
        pass  # no flock on this file system (some network mounts): run unguarded
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    release_output_dir()
    _held = (real, fd)


def release_output_dir() -> None:
    """Release the lock this process holds, if any (a job's end; the process's exit does it
    too)."""
    global _held
    if _held is not None:
        with contextlib.suppress(OSError):
            os.close(_held[1])
        _held = None

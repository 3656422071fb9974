"""Atomic file writes: a file is either its old or its complete new content, never a partial one.

Content is written to a temporary beside the target and renamed into place. Temporaries carry
this process's host and pid in their name, so that a later start can remove those a killed
writer left behind (:func:`remove_stale_temporaries`) without touching a live writer's.
Stdlib only: every layer (data, engine, export, tools) writes through it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Any

__all__ = ["TEMP_PREFIX", "atomic_write", "atomic_write_json", "current_umask",
           "is_stale_temporary", "remove_stale_temporaries", "temp_prefix"]

# Temporaries are named .tmp-<host>.<pid>-<random> (files and folders); earlier versions wrote
# .tmp-<8 random characters>. A process killed mid-write leaves one behind.
TEMP_PREFIX = ".tmp-"
_TEMP_NAME = re.compile(r"\.tmp-(?:(?P<host>[^/]+)\.(?P<pid>\d+)-[\w]+|[a-z0-9_]{8})")
# another machine's temporary (shared file system) is stale once this old
FOREIGN_STALE_S = 24 * 3600


def temp_prefix() -> str:
    """Prefix of this process's temporaries: names its host and pid, so that a later start
    can tell a dead writer's leftovers from a live writer's file."""
    return f"{TEMP_PREFIX}{socket.gethostname().replace('/', '_')}.{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale_temporary(name: str, directory: str) -> bool:
    """Whether `name` in `directory` is a temporary of ours whose writer is gone."""
    found = _TEMP_NAME.fullmatch(name)
    if found is None:
        return False
    if found["pid"] is None:
        return True  # an earlier version's: no writer to ask
    if found["host"] == socket.gethostname().replace("/", "_"):
        return int(found["pid"]) != os.getpid() and not _pid_alive(int(found["pid"]))
    try:
        age = time.time() - os.lstat(os.path.join(directory, name)).st_mtime
    except OSError:
        return False
    return age > FOREIGN_STALE_S


def remove_stale_temporaries(directory: str) -> list[str]:
    """Delete the temporaries (files and folders) of our naming that killed writers left in
    `directory`; returns their paths."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        if not is_stale_temporary(name, directory):
            continue
        path = os.path.join(directory, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    if removed:
        logging.getLogger(__name__).info(
            f"removed {len(removed)} stale temporary file(s) of killed writers in {directory}")
    return removed


def atomic_write(path: str, write) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place,
    so that `path` is either the old or the complete new content, never a partial one."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_bytes(obj: Any) -> bytes:
    """`obj` as the project's JSON files hold it: indented, UTF-8."""
    return json.dumps(obj, indent=1, ensure_ascii=False).encode()


def atomic_write_json(path: str, obj: Any) -> None:
    """`obj` as indented JSON (UTF-8), written atomically."""
    atomic_write(path, lambda f: f.write(json_bytes(obj)))

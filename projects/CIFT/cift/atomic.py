"""Atomic file writes: a file is either its old or its complete new content, never a partial one.

Content is written to a temporary beside the target and renamed into place. Temporaries carry
this process's host and pid in their name, so that a later start can remove those a killed
writer left behind (:func:`remove_stale_temporaries`) without touching a live writer's.
A write that fails for want of room (disk full, a file-size limit: ENOSPC, EFBIG, EDQUOT)
raises :class:`WriteError`, one line naming the file, after removing what it had written.
Stdlib only (and the project's error types): every layer (data, engine, export, tools) writes
through it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Any

from .errors import CiftJobError

__all__ = ["TEMP_PREFIX", "WriteError", "append_text", "atomic_write", "atomic_write_json",
           "current_umask", "is_stale_temporary", "remove_stale_temporaries", "temp_prefix"]

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


class WriteError(CiftJobError):
    """A file could not be written (no space left, a file-size limit, ...); nothing partial of
    it is left and the file keeps its old content, if it had one."""


def write_error(path: str, err: OSError) -> WriteError:
    """The one-line WriteError of `err` (raised while writing `path`)."""
    import errno

    code = errno.errorcode.get(err.errno, "") if err.errno else ""
    reason = (err.strerror or str(err) or type(err).__name__) + (f" [{code}]" if code else "")
    return WriteError(f"{path}: cannot write ({reason}); nothing partial was left and the "
                      "file, if it existed, keeps its previous content")


class _RecordingFile:
    """A file object that remembers the OSError its `write` raised: writers such as torch.save
    turn it into their own error type, which no longer says that the disk was full."""

    def __init__(self, file) -> None:
        self._file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as err:
            self.error = err
            raise

    def __getattr__(self, name: str):
        return getattr(self._file, name)


def atomic_write(path: str, write) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it into place,
    so that `path` is either the old or the complete new content, never a partial one.

    Raises:
        WriteError: the content could not be written for want of room or another OS error
            (the temporary is removed); an error of `write` itself is raised as it is.
    """
    directory = os.path.dirname(path) or "."
    tmp, recording = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), dir=directory)
        with os.fdopen(fd, "wb") as f:
            recording = _RecordingFile(f)
            write(recording)
            f.flush()
            os.fsync(f.fileno())  # the rename must not be durable before the content
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        cause = err if isinstance(err, OSError) else getattr(recording, "error", None)
        if cause is not None and isinstance(err, Exception):
            raise write_error(path, cause) from None
        raise


def append_text(path: str, text: str) -> None:
    """Append `text` (UTF-8) to `path` and make it durable; when that fails, cut the file
    back to its previous length (no partial record is left) and raise WriteError."""
    with open(path, "ab") as f:
        size = f.tell()
        try:
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(f.fileno(), size)
            raise write_error(path, err) from None


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

"""Atomic writes: whole new content or the old one, never a partial file; the usual mode; a
write that runs out of room (a file-size limit, a full disk) is one line naming the file."""
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from cift.atomic import WriteError, append_text, atomic_write, atomic_write_json
from helpers import ROOT


def test_writes_whole_content_with_the_umask_mode(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(str(path), {"a": 1, "b": "CIFT\u2020"})
    assert path.read_text(encoding="utf-8") == '{\n "a": 1,\n "b": "CIFT\u2020"\n}'
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError) as err:
        atomic_write(str(path), fail)
    assert str(err.value).startswith(f"{path}: cannot write (No space left on device [ENOSPC])")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_an_error_of_the_writer_itself_is_raised_as_it_is(tmp_path):
    def fail(f):
        raise KeyError("not an I/O error")

    with pytest.raises(KeyError):
        atomic_write(str(tmp_path / "x"), fail)
    assert list(tmp_path.iterdir()) == []


# A process limited to LIMIT bytes per file (RLIMIT_FSIZE) with SIGXFSZ ignored (Python's
# default), so that a write past the limit fails with EFBIG instead of killing the process.
LIMITED = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    sys.path.insert(0, {package!r})
    import torch
    from cift.atomic import WriteError, append_text, atomic_write
    from cift.errors import print_input_error
    try:
        {body}
    except WriteError as err:
        sys.exit(print_input_error(err))
""")
LIMIT = 100_000


def run_limited(body: str) -> subprocess.CompletedProcess:
    code = LIMITED.format(limit=LIMIT, package=str(ROOT / "projects/CIFT"), body=body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_a_checkpoint_past_the_file_size_limit_is_one_line_and_nothing_partial(tmp_path):
    path = tmp_path / "model_0000.pth"
    path.write_bytes(b"the previous checkpoint")
    done = run_limited(f"atomic_write({str(path)!r}, lambda f: torch.save("
                       "{'w': torch.zeros(1_000_000)}, f))")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: {path}: cannot write (File too large [EFBIG]); nothing partial "
                     "was left and the file, if it existed, keeps its previous content"]
    assert path.read_bytes() == b"the previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["model_0000.pth"]


def test_an_append_past_the_limit_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 0}\n')
    done = run_limited(f"append_text({str(path)!r}, 'x' * {2 * LIMIT})")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {path}: cannot write (File too large [EFBIG])")
    assert path.read_text() == '{"iteration": 0}\n'


def test_append_text_appends(tmp_path):
    path = tmp_path / "log"
    append_text(str(path), "a\n")
    append_text(str(path), "b\n")
    assert path.read_text() == "a\nb\n"

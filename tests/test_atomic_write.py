"""Atomic writes: whole new content or the old one, never a partial file; the usual mode."""
import os
import stat

import pytest

from cift.atomic import atomic_write, atomic_write_json


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
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(path), fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]

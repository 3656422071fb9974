"""No leftovers: a process killed (SIGKILL) while it writes a checkpoint or an export leaves a
temporary of our naming, which the next start removes; an export is renamed into place as a
whole, so a killed one leaves no partial entry."""
from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cift.atomic import is_stale_temporary, remove_stale_temporaries, temp_prefix
from helpers import DEMO
from helpers.exports import export, trained_like, write_run
from helpers.runs import TINY, train_net

TESTS = Path(__file__).resolve().parent


def run_killed(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that SIGKILLs itself at the patched point."""
    prelude = f"import os, signal, sys\nsys.path.insert(0, {str(TESTS)!r})\n"
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return result


def temporaries(directory: Path) -> list[Path]:
    return sorted(directory.glob(".tmp-*"))


def test_training_killed_inside_a_checkpoint_leaves_a_temporary_the_next_start_removes(
        env, tmp_path):
    out = tmp_path / "run"
    run_killed(f"""
        import helpers.runs as t
        import cift.engine.checkpoint as c
        real = c.torch.save
        def save(obj, f):
            f.write(b"partial checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        c.torch.save = save
        t.train_net.run(["--config-file", t.DEMO, *t.TINY, "OUTPUT_DIR", {str(out)!r}])
    """, FASTREID_DATASETS=str(env))
    left = temporaries(out)
    assert len(left) == 1 and stat.S_IMODE(left[0].stat().st_mode) == 0o600
    assert not (out / "model_0000.pth").exists()
    # a rerun in the same folder starts by removing it
    assert train_net.run(["--config-file", DEMO, *TINY, "OUTPUT_DIR", str(out)]) == 0
    assert temporaries(out) == []
    assert (out / "model_final.pth").is_file()


def test_only_dead_writers_temporaries_are_removed(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        names = {
            f".tmp-{host}.{live.pid}-abc123": False,        # a live writer on this machine
            f"{temp_prefix()}mine": False,                   # this process's own
            f".tmp-{host}.{2**22 + 12345}-x1": True,         # no such process
            ".tmp-a1b2c3d4": True,                           # an earlier version's
            ".tmp-elsewhere.example.org.77-q": False,        # another machine's, recent
            ".tmp-notours": False, "model.pth": False, ".tmp-a1b2c3d4.bak": False,
        }
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        (tmp_path / f".tmp-{host}.{2**22 + 12346}-dir").mkdir()  # a killed export's folder
        (tmp_path / f".tmp-{host}.{2**22 + 12346}-dir" / "config.yaml").write_text("x")
        old = tmp_path / ".tmp-faraway.9-z"
        old.write_bytes(b"x")
        os.utime(old, (0, 0))  # another machine's, a day old: stale
        removed = {Path(p).name for p in remove_stale_temporaries(str(tmp_path))}
        assert removed == {n for n, stale in names.items() if stale} | {
            f".tmp-{host}.{2**22 + 12346}-dir", ".tmp-faraway.9-z"}
        assert {p.name for p in tmp_path.iterdir()} == {n for n, s in names.items() if not s}
        assert not is_stale_temporary("config.yaml", str(tmp_path))
    finally:
        live.kill()
        live.wait()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("run"), trained_like("VIBaseline"))


EXPORT = """
    import helpers.exports as t
    import cift.export.model_zoo as z
    {patch}
    t.export_model.run(["--config-file", t.CONFIGS["VIBaseline"], *t.TINY, "MODEL.WEIGHTS",
                        {weights!r}, "--output", {out!r}, *{extra!r}])
"""
# kill points: after the weights file is on disk (second fsync: config not yet written), and
# after every file is written, just before the folder is renamed into place
KILL_AFTER_WEIGHTS = """
    calls = []
    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            return os.fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    z.os.fsync = fsync
"""
KILL_BEFORE_RENAME = """
    z.install_folder = lambda tmp, out: os.kill(os.getpid(), signal.SIGKILL)
"""
KILL_BETWEEN_RENAMES = """
    real = z.os.rename
    def rename(a, b):
        real(a, b)
        if os.path.basename(b).startswith(".tmp-"):  # the old entry moved aside
            os.kill(os.getpid(), signal.SIGKILL)
    z.os.rename = rename
"""


@pytest.mark.parametrize("patch", [KILL_AFTER_WEIGHTS, KILL_BEFORE_RENAME],
                         ids=["after-weights", "before-rename"])
def test_killed_export_leaves_no_entry_and_the_next_export_cleans_up(checkpoint, tmp_path,
                                                                     patch):
    out = tmp_path / "zoo" / "entry"
    (tmp_path / "zoo").mkdir()
    run_killed(EXPORT.format(patch=textwrap.indent(textwrap.dedent(patch), "    "),
                             weights=str(checkpoint), out=str(out), extra=[]))
    assert not out.exists()  # complete or absent: absent
    left = temporaries(tmp_path / "zoo")
    assert len(left) == 1 and left[0].is_dir()
    assert export(checkpoint, out, arch="VIBaseline") == 0
    assert temporaries(tmp_path / "zoo") == []
    assert sorted(p.name for p in out.iterdir())[:2] == ["config.yaml", "metrics.json"]


def test_export_killed_while_replacing_leaves_the_entry_absent_not_mixed(checkpoint, tmp_path):
    out = tmp_path / "entry"
    assert export(checkpoint, out, arch="VIBaseline") == 0
    other = write_run(tmp_path / "other", trained_like("VIBaseline", seed=4))
    run_killed(EXPORT.format(patch=textwrap.indent(textwrap.dedent(KILL_BETWEEN_RENAMES), "    "),
                             weights=str(other), out=str(out), extra=["--force"]))
    assert not out.exists()
    assert len(temporaries(tmp_path)) == 2  # the old entry and the new one, both complete
    assert export(other, out, arch="VIBaseline") == 0
    assert temporaries(tmp_path) == []


def test_export_output_that_is_a_file_or_a_foreign_folder_is_refused(checkpoint, tmp_path,
                                                                     capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert export(checkpoint, target, arch="VIBaseline") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--output" in err and "is a file" in err
    assert target.read_text() == "keep me"
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("mine")
    assert export(checkpoint, folder, "--force", arch="VIBaseline") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "README.md" in err
    assert [p.name for p in folder.iterdir()] == ["README.md"]


def test_export_into_an_empty_folder_and_the_entry_mode(checkpoint, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert export(checkpoint, out, arch="VIBaseline") == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask



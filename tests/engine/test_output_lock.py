"""OUTPUT_DIR is checked before anything is written: a folder (not a file), writable, and not
held by another live job (an advisory lock that dies with its holder, kill -9 included)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cift.engine import output_lock
from cift.engine.output_lock import LOCK_NAME, check_output_dir, lock_output_dir
from helpers import DEMO, ROOT
from helpers.errors import error_line, one_line_error
from helpers.runs import TINY, run_cli

HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {package!r})
    from cift.engine.output_lock import lock_output_dir
    lock_output_dir({folder!r})
    print("locked", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def held(tmp_path):
    """tmp_path/run, locked by another process (killed with SIGKILL at the end)."""
    folder = tmp_path / "run"
    code = HOLDER.format(package=str(ROOT / "projects/CIFT"), folder=str(folder))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield folder, holder
    holder.kill()
    holder.wait()


@pytest.fixture(autouse=True)
def release():
    yield
    output_lock.release_output_dir()


def test_a_folder_held_by_another_job_is_refused_naming_its_pid(held):
    folder, holder = held
    for call in (check_output_dir, lock_output_dir):
        message = one_line_error(call, str(folder))
        assert message == (f"OUTPUT_DIR {folder}: in use by another run (pid {holder.pid}); "
                           "wait for it to end, or choose another OUTPUT_DIR")


def test_other_ranks_of_the_job_do_not_look_at_the_lock(held):
    """Under torchrun every rank runs the input checks, and rank 0 may already hold the lock."""
    folder, _ = held
    check_output_dir(str(folder), lock=False)


def test_the_lock_dies_with_its_holder_even_under_kill_9(held):
    folder, holder = held
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock_output_dir(str(folder))  # no stale lock
    assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_relocking_in_the_same_process_is_allowed_and_forked_children_do_not_hold_it(tmp_path):
    lock_output_dir(str(tmp_path / "a"))
    lock_output_dir(str(tmp_path / "a"))
    check_output_dir(str(tmp_path / "a"))
    pid = os.fork()
    if pid == 0:  # a data-loader worker: it must not keep the lock alive
        os._exit(0 if output_lock._held is None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    lock_output_dir(str(tmp_path / "b"))  # another job of this process releases "a"
    code = HOLDER.format(package=str(ROOT / "projects/CIFT"), folder=str(tmp_path / "a"))
    other = subprocess.run([sys.executable, "-c", code.replace("time.sleep(600)", "")],
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr


def test_a_file_or_an_unwritable_folder_is_refused_before_writing(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert one_line_error(check_output_dir, str(afile)) == (
        f"OUTPUT_DIR {afile}: not a folder (a file of that name exists)")
    assert "is a file" in one_line_error(lock_output_dir, str(afile / "sub"))
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "not writable" in one_line_error(check_output_dir, str(ro / "run"))
    finally:
        ro.chmod(0o700)


def test_train_net_into_a_held_folder_stops_before_writing(held, env, capsys):
    folder, holder = held
    before = sorted(p.name for p in folder.iterdir())
    rc = run_cli("--config-file", DEMO, *TINY, "OUTPUT_DIR", str(folder))
    assert rc == 2
    assert error_line(capsys) == (f"error: OUTPUT_DIR {folder}: in use by another run (pid "
                                  f"{holder.pid}); wait for it to end, or choose another "
                                  "OUTPUT_DIR")
    assert sorted(p.name for p in folder.iterdir()) == before == [LOCK_NAME]


def test_train_net_into_a_file_is_one_line(env, tmp_path, capsys):
    afile = tmp_path / "out"
    afile.write_text("x")
    assert run_cli("--config-file", DEMO, *TINY, "OUTPUT_DIR", str(afile)) == 2
    assert error_line(capsys) == f"error: OUTPUT_DIR {afile}: not a folder (a file of that " \
                                 "name exists)"

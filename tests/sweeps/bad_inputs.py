#!/usr/bin/env python
"""The bad-input sweep of issue 18: run every case of `cases.py` as a new user would, against a
project tree, and classify how each ended.

    python tests/sweeps/bad_inputs.py --json before.json --markdown before.md
    python tests/sweeps/bad_inputs.py --tree OTHER_CHECKOUT --json after.json
    python tests/sweeps/bad_inputs.py --compare before.json after.json

Each case is one subprocess (train_net.py or a tool) of `--python` with the tree's
projects/CIFT first on PYTHONPATH, in a folder of its own, on a tiny SyntheticVI data set made
once per sweep by the tree's own generator. At most two run at a time.

Classes: `clean` (a refusal: non-zero exit, no traceback, a last stderr line that names what the
case says, nothing written to the watched output; or an accepted valid input: exit 0), `late`
(refused in one line, but after writing files or starting to train, or with a message that does
not name the input, or a dump longer than a line should be; also a valid input refused),
`traceback` (a Python traceback, a signal death with no message, or a timeout) and `silent` (a
bad input that exited 0). `error` marks a case the harness itself could not set up.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import builders as b  # noqa: E402
from cases import CASES, Case  # noqa: E402

CLASSES = ("clean", "late", "traceback", "silent", "error")
# How bad each class is, for --compare: a case got worse when its rank rose.
RANK = {"clean": 0, "late": 1, "silent": 2, "traceback": 2, "error": 3}
WRITES_OK = {c.id: c.writes_ok for c in CASES}
PROGRAMS = {"train_net": "projects/CIFT/train_net.py",
            "search": "projects/CIFT/tools/search.py",
            "export": "projects/CIFT/tools/export_model.py",
            "regdb": "projects/CIFT/tools/run_regdb_trials.py",
            "compare": "projects/CIFT/tools/compare_runs.py",
            "visualize": "projects/CIFT/tools/visualize_affinity.py"}
TRACEBACK = "Traceback (most recent call last)"
STARTED = re.compile(r"Starting training|epoch/iter:")
# stderr lines that every process prints on a machine without CUDA: not a message
NOISE = re.compile(r"No CUDA runtime is found")
FSIZE_LIMIT = 8 * 1024 * 1024  # bytes: logs fit, a ResNet-18 checkpoint does not
SIGNAL_GRACE_S = 120  # how long an interrupted run may take to stop
LINE_CHARS = 300  # of the last stderr line kept in the results


class Sweep:
    """The sweep's settings and what it prepared once for every case."""

    def __init__(self, tree: Path, python: str, work: Path, logs: Path | None, keep: bool):
        self.tree, self.python, self.work, self.logs, self.keep = tree, python, work, logs, keep
        self.vars: dict[str, str] = {"demo": str(tree / b.DEMO), "cift": str(tree / b.CIFT_DEMO),
                                     "work": str(work)}
        self.prep_errors: dict[str, str] = {}
        self.data = work / "datasets"

    def env(self, data: str | None = None) -> dict[str, str]:
        return b.tree_env(self.tree, data or str(self.data))

    # ------------------------------------------------------------ prepared once

    def prepare(self) -> None:
        """The tiny data set (required), then the trained run and what derives from it; a
        failed step is recorded, and the cases that need it end as `error`."""
        synthetic = self.data / "SyntheticVI"
        b.tree_python(self.python, self.env(), b.GENERATE, str(synthetic))
        pristine = self.work / "pristine" / "SyntheticVI"
        shutil.copytree(synthetic, pristine)
        self.vars.update(data=str(self.data), pristine=str(pristine))
        self._step("regdb", lambda: {"regdb": str(b.make_regdb(pristine, self.work / "regdb"))})
        self._step("search", lambda: dict(zip(
            ("search_query", "search_gallery"),
            map(str, b.make_search_folders(pristine, self.work / "search")), strict=True)))
        self._step("run", self._prepare_run)
        if "run" in self.prep_errors:
            self.prep_errors["derived"] = "needs the prepared run"
        else:
            self._step("derived", self._prepare_derived)

    def _step(self, name: str, make) -> None:
        try:
            self.vars.update(make())
        except Exception as err:  # recorded; its cases end as `error`
            self.prep_errors[name] = f"{type(err).__name__}: {err}"

    def _prepare_run(self) -> dict:
        """A finished tiny demo run that checkpoints every epoch."""
        run = self.work / "prep_run"
        cmd = [self.python, str(self.tree / PROGRAMS["train_net"]), "--config-file",
               self.vars["demo"], *b.TINY, "SOLVER.CHECKPOINT_PERIOD", "1", "OUTPUT_DIR",
               str(run)]
        done = subprocess.run(cmd, env=self.env(), cwd=self.work, capture_output=True,
                              text=True, timeout=900)
        weights = run / "model_final.pth"
        if done.returncode != 0 or not weights.is_file():
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"the tiny demo run failed (exit {done.returncode}): {tail}")
        early = sorted(p for p in run.glob("model_*.pth")
                       if p.stem not in ("model_final", "model_best"))
        if not early:
            raise RuntimeError("the tiny demo run left no intermediate checkpoint")
        return {"run": str(run), "weights": str(weights), "early": str(early[0])}

    def _prepare_derived(self) -> dict:
        nan, nomatch = self.work / "weights_x.pth", self.work / "renamed.safetensors"
        b.tree_python(self.python, self.env(), b.DERIVE_WEIGHTS, self.vars["weights"], str(nan),
                      str(nomatch))
        return {"nan_ckpt": str(nan), "nomatch_st": str(nomatch)}


# ---------------------------------------------------------------- one case

def expand(items, ctx: b.Ctx) -> list[str]:
    """Placeholders filled, "@TINY" replaced by the TINY overrides."""
    out = []
    for item in items:
        out.extend(b.TINY if item == "@TINY" else [ctx.fill(item)])
    return out


def command(case: Case, sweep: Sweep, ctx: b.Ctx) -> list[str]:
    program = sweep.tree / PROGRAMS[case.program]
    if not program.is_file():
        raise FileNotFoundError(f"{program} is not in this tree")
    if case.program != "train_net":
        return [sweep.python, str(program), *expand(case.opts, ctx)]
    config = ["--config-file", ctx.fill(case.config)] if case.config is not None else []
    return [sweep.python, str(program), *config, *case.flags, *(b.TINY if case.tiny else []),
            "OUTPUT_DIR", ctx.vars["out"], *expand(case.opts, ctx)]


def snapshot(path: Path) -> dict[str, tuple]:
    """Every file and folder under `path` (or `path` itself, a file): size and mtime."""
    if not os.path.lexists(path):
        return {}
    if not path.is_dir():
        st = path.lstat()
        return {".": (st.st_size, st.st_mtime_ns)}
    found = {".": ("dir",)}
    for folder, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), path)] = ("dir",)
        for name in files:
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            found[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return found


def changes(before: dict, after: dict) -> tuple[int, int]:
    """(files written or changed, folders created) between two snapshots."""
    new = [k for k, v in after.items() if before.get(k) != v]
    dirs = sum(after[k] == ("dir",) for k in new)
    return len(new) - dirs, dirs


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not NOISE.search(ln)]
    return lines[-1].strip() if lines else ""


def names_missing(case: Case, line: str, ctx: b.Ctx) -> list[str]:
    """The entries of `case.names` the message does not contain (case-insensitive). The
    sweep's temporary folder is masked first, so that no word of its name can match."""
    missing = []
    line = line.replace(ctx.vars["work"], "<work>").lower()
    for entry in case.names:
        options = (entry,) if isinstance(entry, str) else entry
        if not any(ctx.fill(o).replace(ctx.vars["work"], "<work>").lower() in line
                   for o in options):
            missing.append(" or ".join(repr(ctx.fill(o)) for o in options))
    return missing


class Outcome:
    """What a process left: exit status, output, the message after a signal, notes."""

    def __init__(self, rc: int | None, out: str, err: str, timed_out: bool = False,
                 message: str | None = None, notes: list[str] | None = None,
                 went_on: bool = False):
        self.rc, self.out, self.err, self.timed_out = rc, out, err, timed_out
        self.went_on = went_on  # stopped by the harness while it ran on, as if it would end 0
        self.message = last_line(err) if message is None else message
        self.notes = notes or []  # said in the record
        self.problems: list[str] = []  # make a one-line refusal late


def classify(case: Case, o: Outcome, files: int, dirs: int, ctx: b.Ctx) -> tuple[str, str]:
    """(class, note) of one outcome (see the module docstring)."""
    written = files + dirs
    wrote = f"after writing {files} file(s), {dirs} folder(s)" if written else "before writing"
    if o.timed_out:
        return "traceback", f"no end within its time, killed ({wrote})"
    if TRACEBACK in o.err or TRACEBACK in o.out:
        return "traceback", wrote
    if case.expect == "accept":
        if o.rc == 0:
            return "clean", ""
        if o.rc is None or o.rc < 0 or not o.message:
            return "traceback", f"exit {o.rc} with no message ({wrote})"
        return "late", "a valid input refused"
    if o.rc == 0 or o.went_on:
        return ("clean", "ran to the end") if case.expect == "either" else ("silent", wrote)
    if not o.message:
        return "traceback", f"exit {o.rc} with no message ({wrote})"
    problems = []
    if written and not case.writes_ok:
        problems.append(wrote)
    if not case.writes_ok and STARTED.search(o.out + o.err):
        problems.append("after training started")
    problems += o.problems
    missing = names_missing(case, o.message, ctx)
    if missing:
        problems.append("the message does not name " + ", ".join(missing))
    if len(o.message) > case.max_len:
        problems.append(f"a message of {len(o.message)} characters")
    return ("late", "; ".join(problems)) if problems else ("clean", "")


def start(cmd: list[str], ctx: b.Ctx, tag: str, preexec=None) -> tuple[subprocess.Popen, Path,
                                                                        Path]:
    out, err = ctx.tmp / f"{tag}.stdout", ctx.tmp / f"{tag}.stderr"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(cmd, cwd=ctx.tmp, env=ctx.env, stdout=fo, stderr=fe,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=preexec)
    return proc, out, err


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def finish(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for `proc`; past `timeout`, kill its process group. True when it timed out."""
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return True


def stop_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group this harness started for `proc` (its workers included)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for_training(proc: subprocess.Popen, stdout: Path, stderr: Path, timeout: float
                      ) -> bool:
    """True once the run logs its first training step; False if it ended or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if STARTED.search(read(stdout)) or STARTED.search(read(stderr)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(1)
    return False


def run_plain(cmd, case: Case, ctx: b.Ctx, preexec=None) -> Outcome:
    proc, out, err = start(cmd, ctx, "run", preexec)
    timed_out = finish(proc, case.timeout)
    return Outcome(proc.returncode, read(out), read(err), timed_out)


def run_signal(cmd, case: Case, ctx: b.Ctx, sig: int) -> Outcome:
    """Start a long run, send `sig` a few seconds into training; its message is what it wrote
    on stderr after the signal."""
    proc, out, err = start(cmd, ctx, "run")
    if not wait_for_training(proc, out, err, case.timeout):
        timed_out = finish(proc, 1)
        return Outcome(proc.returncode, read(out), read(err), timed_out,
                       notes=["ended (or never trained) before the signal"])
    time.sleep(3)
    before = len(read(err))
    proc.send_signal(sig)
    timed_out = finish(proc, SIGNAL_GRACE_S)
    text = read(err)
    return Outcome(proc.returncode, read(out), text, timed_out, message=last_line(text[before:]),
                   notes=[f"{signal.Signals(sig).name} sent during training"])


def run_two(cmd, case: Case, ctx: b.Ctx) -> Outcome:
    """A second identical run into the OUTPUT_DIR of one that is training; the outcome is
    the second's: refused, or went on to train beside the first (then both are stopped)."""
    first, out1, err1 = start(cmd, ctx, "first")
    if not wait_for_training(first, out1, err1, case.timeout):
        finish(first, 1)
        raise RuntimeError(f"the first run never trained (exit {first.returncode}): "
                           f"{last_line(read(err1))}")
    second, out2, err2 = start(cmd, ctx, "second")
    went_on = wait_for_training(second, out2, err2, case.timeout)
    timed_out = False if went_on else finish(second, 5)
    state = "still training" if first.poll() is None else f"ended with exit {first.returncode}"
    notes = [f"the second run {'trained beside' if went_on else 'ended while'} the first "
             f"(pid {first.pid}, {state})"]
    stop_group(second)
    stop_group(first)
    outcome = Outcome(second.returncode, read(out2), read(err2), timed_out, notes=notes,
                      went_on=went_on)
    if str(first.pid) not in outcome.message:
        outcome.problems.append("the message does not name the first run's pid")
    return outcome


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def partial_files(path: Path) -> list[str]:
    """Files a write cut short by the size limit may have left: at the limit, or temporaries."""
    found = []
    for name, info in snapshot(path).items():
        if info != ("dir",) and (info[0] == FSIZE_LIMIT or ".tmp" in name):
            found.append(name)
    return found


def run_case(case: Case, sweep: Sweep, number: int) -> dict:
    """Build the case's world, run it, classify it; never raises. The case's folder is named
    by its number, so that no word of its id shows in paths its messages name."""
    started = time.monotonic()
    tmp = sweep.work / "cases" / f"c{number:03d}"
    tmp.mkdir(parents=True)
    record = {"id": case.id, "group": case.group, "expect": case.expect,
              "program": case.program, "writes_ok": case.writes_ok, "command": "", "rc": None,
              "class": "error", "note": "", "files_written": 0, "dirs_created": 0,
              "last_line": "", "duration_s": 0.0}
    try:
        blocked = [n for n in case.needs if n in sweep.prep_errors]
        if blocked:
            raise RuntimeError(f"prepared {blocked[0]!r} failed: {sweep.prep_errors[blocked[0]]}")
        ctx = b.Ctx(sweep.tree, sweep.python, tmp,
                    {**sweep.vars, "tmp": str(tmp), "out": str(tmp / "out")}, sweep.env())
        if case.build:
            ctx.vars.update(case.build(ctx))
        for name, value in case.env:
            ctx.env[name] = ctx.fill(value)
        cmd = command(case, sweep, ctx)
        record["command"] = shlex.join(cmd[1:])
        watched = Path(ctx.fill(case.watch))
        before = snapshot(watched)
        if case.runner == "sigterm":
            outcome = run_signal(cmd, case, ctx, signal.SIGTERM)
        elif case.runner == "sigint":
            outcome = run_signal(cmd, case, ctx, signal.SIGINT)
        elif case.runner == "two_runs":
            outcome = run_two(cmd, case, ctx)
        elif case.runner == "fsize":
            outcome = run_plain(cmd, case, ctx, preexec=limit_file_size)
            left = partial_files(watched)
            if left:
                outcome.problems.append("partial files left: " + ", ".join(left[:3]))
        else:
            outcome = run_plain(cmd, case, ctx)
        files, dirs = changes(before, snapshot(watched))
        cls, note = classify(case, outcome, files, dirs, ctx)
        record.update(rc=outcome.rc, files_written=files, dirs_created=dirs,
                      last_line=outcome.message[:LINE_CHARS],
                      note="; ".join(filter(None, [note, *outcome.notes])))
        record["class"] = cls
        if sweep.logs:
            for stream in tmp.glob("*.std*"):
                shutil.copyfile(stream, sweep.logs / f"{case.id}.{stream.name}")
    except Exception as err:
        record["note"] = f"harness: {type(err).__name__}: {err}"
        if sweep.logs:
            (sweep.logs / f"{case.id}.harness.txt").write_text(traceback.format_exc())
    finally:
        record["duration_s"] = round(time.monotonic() - started, 1)
        b.release(tmp)
        if not sweep.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return record


# ---------------------------------------------------------------- the sweep

def select(only: str) -> list[Case]:
    """The cases whose id or group contains one of the comma-separated words (all if empty)."""
    words = [w for w in only.split(",") if w]
    return [c for c in CASES if not words or any(w in c.id or w in c.group for w in words)]


def tree_commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run_sweep(cases: list[Case], sweep: Sweep, jobs: int) -> list[dict]:
    """Prepare, then run the cases `jobs` at a time (those that start two processes alone),
    printing one line per finished case."""
    sweep.prepare()
    for name, err in sweep.prep_errors.items():
        print(f"prepare {name}: FAILED: {err}", file=sys.stderr, flush=True)
    lock, done = threading.Lock(), []

    number = {c.id: i for i, c in enumerate(cases)}

    def one(case: Case) -> dict:
        record = run_case(case, sweep, number[case.id])
        with lock:
            done.append(record)
            print(f"[{len(done)}/{len(cases)}] {record['class']:9s} {case.id} "
                  f"({record['duration_s']:.0f} s) {record['note']}", flush=True)
        return record

    alone = [c for c in cases if c.runner == "two_runs"]
    shared = [c for c in cases if c.runner != "two_runs"]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(one, shared))
    records += [one(c) for c in alone]
    return sorted(records, key=lambda r: number[r["id"]])


def wrote_first(record: dict) -> bool:
    """A command that ended in an error (traceback or message) after writing to its output,
    where nothing should be written (not an interruption)."""
    writes_ok = record.get("writes_ok", WRITES_OK.get(record["id"], False))
    return (record["rc"] not in (0, None) and not writes_ok
            and record["files_written"] + record["dirs_created"] > 0)


def counts(records: list[dict], key: str | None = None) -> dict:
    """{class: n}, or {key value: {class: n}}."""
    if key is None:
        return {cls: sum(r["class"] == cls for r in records) for cls in CLASSES}
    groups = dict.fromkeys(r[key] for r in records)
    return {g: counts([r for r in records if r[key] == g]) for g in groups}


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: dict) -> str:
    records = result["cases"]
    shown = [c for c in CLASSES if c != "error" or result["counts"]["error"]]
    lines = [f"# Bad-input sweep: {result['tree']} ({result['commit']})", "",
             f"{len(records)} cases, {result['duration_s'] / 60:.1f} min with {result['jobs']} "
             f"at a time; python {result['python']}.", ""]
    if result["prep_errors"]:
        lines += ["Preparation failures: " + "; ".join(
            f"{k}: {v}" for k, v in result["prep_errors"].items()), ""]
    lines += ["| class | cases |", "|---|---:|"]
    lines += [f"| {cls} | {result['counts'][cls]} |" for cls in shown]
    lines += ["", derived(records)]
    for key, title in (("expect", "expectation"), ("group", "group")):
        lines += ["", f"| {title} | " + " | ".join(shown) + " |",
                  "|---|" + "---:|" * len(shown)]
        for name, found in counts(records, key).items():
            lines.append(f"| {cell(name)} | " + " | ".join(str(found[c]) for c in shown) + " |")
    lines += ["", "## Cases that are not clean", "",
              "| case | group | expect | class | exit | files | note | last stderr line |",
              "|---|---|---|---|---:|---:|---|---|"]
    for r in records:
        if r["class"] != "clean":
            lines.append(f"| {r['id']} | {cell(r['group'])} | {r['expect']} | {r['class']} | "
                         f"{r['rc']} | {r['files_written']} | {cell(r['note'])} | "
                         f"{cell(r['last_line'][:160])} |")
    return "\n".join(lines) + "\n"


def derived(records: list[dict]) -> str:
    """The issue's two extra figures: tracebacks after writing, errors after writing."""
    after = sum(r["class"] == "traceback" and r["files_written"] + r["dirs_created"] > 0
                for r in records)
    return (f"Tracebacks after writing to the output: {after}; commands that ended in an error "
            f"after writing to their output (interruptions aside): "
            f"{sum(map(wrote_first, records))}.")


def compare(before_path: str, after_path: str) -> str:
    """The before/after table of two sweeps' JSON, and the cases that got worse."""
    before, after = (json.loads(Path(p).read_text()) for p in (before_path, after_path))
    lines = [f"| class | before ({before['commit']}) | after ({after['commit']}) |",
             "|---|---:|---:|"]
    lines += [f"| {cls} | {before['counts'][cls]} | {after['counts'][cls]} |" for cls in CLASSES]
    lines.append(f"| total | {len(before['cases'])} | {len(after['cases'])} |")
    lines += ["", "before: " + derived(before["cases"]), "after: " + derived(after["cases"])]
    old = {r["id"]: r for r in before["cases"]}
    new = {r["id"]: r for r in after["cases"]}
    worse = [(old[i], new[i]) for i in new if i in old
             and RANK[new[i]["class"]] > RANK[old[i]["class"]]]
    better = sum(RANK[new[i]["class"]] < RANK[old[i]["class"]] for i in new if i in old)
    lines += ["", f"{better} case(s) got better, {len(worse)} got worse."]
    if worse:
        lines += ["", "| case | before | after | note after | last stderr line after |",
                  "|---|---|---|---|---|"]
        lines += [f"| {o['id']} | {o['class']} | {n['class']} | {cell(n['note'])} | "
                  f"{cell(n['last_line'][:160])} |" for o, n in worse]
    only = sorted(set(old) ^ set(new))
    if only:
        lines += ["", "In one sweep only: " + ", ".join(only)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(here), help="project tree to sweep "
                        "(default: the one this script is in)")
    parser.add_argument("--python", default=sys.executable,
                        help="Python with the project's dependencies (default: this one)")
    parser.add_argument("--json", help="write every case's record here")
    parser.add_argument("--markdown", help="write the summary here")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2,
                        help="cases run at a time (default 2)")
    parser.add_argument("--only", default="", help="comma-separated words: run the cases "
                        "whose id or group contains one")
    parser.add_argument("--workdir", help="where the temporary folder goes (default: the "
                        "system's)")
    parser.add_argument("--logs", help="copy each case's stdout and stderr into this folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="print the before/after table of two --json files and exit")
    parser.add_argument("--report", metavar="JSON", help="write the summary of a --json file "
                        "(to --markdown, else stdout) and exit")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*args.compare), end="")
        return 0
    if args.report:
        summary = markdown(json.loads(Path(args.report).read_text()))
        if args.markdown:
            Path(args.markdown).write_text(summary)
        else:
            print(summary, end="")
        return 0
    cases = select(args.only)
    if args.list:
        for c in cases:
            print(f"{c.group:32s} {c.expect:7s} {c.id}")
        print(f"{len(cases)} cases")
        return 0
    tree = Path(args.tree).resolve()
    work = Path(tempfile.mkdtemp(prefix="cift-sweep-", dir=args.workdir))
    logs = Path(args.logs) if args.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(tree, args.python, work, logs, args.keep)
    began, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        records = run_sweep(cases, sweep, args.jobs)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:  # the data set
        print(f"error: preparing the tiny data set in {tree} failed: {err}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {"tree": str(tree), "commit": tree_commit(tree), "python": args.python,
              "jobs": args.jobs, "started": started,
              "duration_s": round(time.monotonic() - began, 1), "counts": counts(records),
              "prep_errors": sweep.prep_errors, "cases": records}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    summary = markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(summary)
    print(summary.split("\n## ")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())

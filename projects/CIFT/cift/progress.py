"""Progress of the long steps (training, data set generation, protocol scoring, image checks,
the toy experiment), on stderr: a tqdm bar when stderr is a terminal; elsewhere (a log file, a
pipe, CI) one plain line every `LINE_PERIOD_S` seconds, so a step shorter than that prints
nothing and a long one never runs silent."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

__all__ = ["LINE_PERIOD_S", "PeriodicLines", "format_minutes", "progress"]

# Seconds between two progress lines off a terminal (a bar redraws itself instead).
LINE_PERIOD_S = 30.0


def format_minutes(seconds: float) -> str:
    """A duration for people: "45 s" under two minutes, else "3.4 min"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class PeriodicLines:
    """The part of tqdm's interface the project uses (iteration, `update`, `set_description`,
    `close`), writing "DESC: N/TOTAL UNIT (P%), T elapsed, about T left" to stderr at most every
    `LINE_PERIOD_S` seconds, and a last line at `close` when it wrote an earlier count before."""

    def __init__(self, iterable: Iterable | None = None, desc: str = "",
                 total: int | None = None, unit: str = "it", initial: int = 0):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.n = self.start_n = initial
        self.start = self.last = time.monotonic()
        self.lines = 0
        self.written_n = None  # the count the last line showed
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self) -> PeriodicLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.closed and now - self.last >= LINE_PERIOD_S:
            self.last = now
            self._write(now)

    def close(self) -> None:
        if self.lines and not self.closed and self.written_n != self.n:
            self._write(time.monotonic())
        self.closed = True

    def _write(self, now: float) -> None:
        elapsed = now - self.start
        done = f"{self.n}" if self.total is None else f"{self.n}/{self.total}"
        line = f"{self.desc}: {done} {self.unit}"
        if self.total:
            line += f" ({100 * self.n / self.total:.0f}%)"
        line += f", {format_minutes(elapsed)} elapsed"
        if self.total and self.n > self.start_n and self.n < self.total:
            left = elapsed / (self.n - self.start_n) * (self.total - self.n)
            line += f", about {format_minutes(left)} left"
        print(line, file=sys.stderr, flush=True)
        self.lines += 1
        self.written_n = self.n


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None,
             unit: str = "it", leave: bool = False, initial: int = 0):
    """A progress display over `iterable` (or a manual one of `total` steps when it is None,
    advanced by `update`): tqdm when stderr is a terminal, else :class:`PeriodicLines`."""
    if not getattr(sys.stderr, "isatty", lambda: False)():
        return PeriodicLines(iterable, desc=desc, total=total, unit=unit, initial=initial)
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, initial=initial,
                dynamic_ncols=True, file=sys.stderr)

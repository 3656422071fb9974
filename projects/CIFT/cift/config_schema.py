"""The kinds of value a config key may hold, and the check of a whole config against a schema.

A schema maps every key of the merged config (fastreid's and cift's) to a :class:`Rule`: a
kind (:class:`Bool`, :class:`Int`, :class:`Float`, :class:`Str`, :class:`Choice`, :class:`Seq`,
...) and relations to other keys, each a function ``(value, cfg) -> str | None`` that returns
what was expected when the value does not fit the rest of the config. :class:`Unused` marks a
fastreid key that cift does not support: it must keep fastreid's default.

Every failure is one line, ``<KEY> <value!r>: expected <what>``, prefixed with the file that set
the key when one did. The tables live beside the defaults: cift's keys in :mod:`cift.config`,
fastreid's in :mod:`cift.config_fastreid`.
"""
from __future__ import annotations

import importlib
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import CiftInputError

__all__ = ["Bool", "Choice", "Float", "Int", "Key", "Kind", "Mismatch", "Pattern", "Rule", "Seq",
           "Str", "Unused", "check_rules", "checked_value", "get_key", "imported", "probability",
           "set_key"]

# A relation: (the key's value, the whole config) -> what was expected, or None when it fits.
Relation = Callable[[Any, Any], "str | None"]


class Mismatch(ValueError):
    """A value that is not of its key's kind; the argument says what was expected."""


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Kind:
    """A kind of value: `what` it is, in the singular and the `plural` (for sequences)."""

    what = ""
    plural = ""

    def fits(self, value) -> bool:
        raise NotImplementedError

    def convert(self, value):
        """The value as the config holds it (an int for a float key becomes a float)."""
        return value

    def check(self, value):
        if self.fits(value):
            return self.convert(value)
        raise Mismatch(self.what)


@dataclass(frozen=True)
class Bool(Kind):
    what = "True or False"
    plural = "True / False values"

    def fits(self, value) -> bool:
        return isinstance(value, bool)


def _number(x) -> str:
    """1 for 1.0, 0.5 for 0.5: bounds as a user writes them."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def _range_text(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return (f" in {'(' if low_open else '['}{_number(low)}, {_number(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f" {'>' if low_open else '>='} {_number(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {_number(high)}"
    return ""


@dataclass(frozen=True)
class Int(Kind):
    """An int (not a bool) in [low, high] (either bound optional)."""

    low: int | None = None
    high: int | None = None

    @property
    def what(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an int in {self.low}..{self.high}"
        return "an int" + _range_text(self.low, self.high)

    @property
    def plural(self) -> str:
        if self.low is not None and self.high is not None:
            return f"ints in {self.low}..{self.high}"
        return "ints" + _range_text(self.low, self.high)

    def fits(self, value) -> bool:
        return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and (self.low is None or value >= self.low)
                and (self.high is None or value <= self.high))

    convert = staticmethod(int)


@dataclass(frozen=True)
class Float(Kind):
    """A real number (an int is taken as a float), not NaN, finite unless `finite` is False,
    within the bounds (closed unless `low_open` / `high_open`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True

    def _text(self, noun: str) -> str:
        bounds = _range_text(self.low, self.high, self.low_open, self.high_open)
        return (f"{'finite ' if self.finite else ''}{noun}{bounds}"
                + ("" if self.finite else " (inf allowed)"))

    @property
    def what(self) -> str:
        return "a " + self._text("number")

    @property
    def plural(self) -> str:
        return self._text("numbers")

    def fits(self, value) -> bool:
        if not _is_real(value):
            return False
        x = float(value)
        return (not math.isnan(x) and (math.isfinite(x) or not self.finite)
                and (self.low is None or (x > self.low if self.low_open else x >= self.low))
                and (self.high is None or (x < self.high if self.high_open else x <= self.high)))

    convert = staticmethod(float)


def probability() -> Float:
    return Float(0.0, 1.0)


@dataclass(frozen=True)
class Str(Kind):
    what = "a string"
    plural = "strings"

    def fits(self, value) -> bool:
        return isinstance(value, str)


@dataclass(frozen=True)
class Pattern(Kind):
    """A regular expression (fastreid matches it against module or parameter names)."""

    what = "a regular expression"
    plural = "regular expressions"

    def fits(self, value) -> bool:
        try:
            return isinstance(value, str) and re.compile(value) is not None
        except re.error:
            return False


def imported(module: str, name: str) -> Callable[[], tuple]:
    """A lazy choice list: `module.name` (its keys when a mapping), imported when first used,
    so that the schema does not import the modules that implement the choices."""
    def load() -> tuple:
        value = getattr(importlib.import_module(module), name)
        return tuple(value.keys() if isinstance(value, Mapping) else value)
    return load


@dataclass(frozen=True)
class Choice(Kind):
    """One of `options` (a tuple, or a callable returning one); `note` follows the list in the
    message."""

    options: tuple | Callable[[], tuple]
    note: str = ""

    def allowed(self) -> tuple:
        return tuple(self.options()) if callable(self.options) else tuple(self.options)

    @property
    def what(self) -> str:
        return f"one of {self.allowed()!r}" + (f" ({self.note})" if self.note else "")

    @property
    def plural(self) -> str:
        return f"values among {self.allowed()!r}" + (f" ({self.note})" if self.note else "")

    def fits(self, value) -> bool:
        # bools are ints to Python: True must not pass for a choice of 1
        return not isinstance(value, bool) and value in self.allowed()


@dataclass(frozen=True)
class Seq(Kind):
    """A list or tuple of `item` values: exactly `length` of them, or at least `min_length`;
    `order` "<" (strictly ascending) or "<=" (non-decreasing); `distinct` items."""

    item: Any
    length: int | None = None
    min_length: int = 0
    order: str = ""
    distinct: bool = False

    @property
    def what(self) -> str:
        if self.length is not None:
            count = f"{self.length} "
        elif self.min_length:
            count = f"{self.min_length} or more "
        else:
            count = "a sequence of "
        extras = [text for flag, text in ((self.order == "<", "ascending"),
                                          (self.order == "<=", "in non-decreasing order"),
                                          (self.distinct, "distinct")) if flag]
        return count + self.item.plural + (f" ({', '.join(extras)})" if extras else "")

    plural = property(lambda self: f"sequences of {self.item.plural}")

    def check(self, value):
        if not isinstance(value, (list, tuple)):
            raise Mismatch(self.what)
        if (len(value) != self.length) if self.length is not None else (
                len(value) < self.min_length):
            raise Mismatch(self.what)
        try:
            items = [self.item.check(v) for v in value]
        except Mismatch:
            raise Mismatch(self.what) from None
        pairs = list(zip(items, items[1:], strict=False))
        if self.order == "<" and any(a >= b for a, b in pairs):
            raise Mismatch(self.what)
        if self.order == "<=" and any(a > b for a, b in pairs):
            raise Mismatch(self.what)
        if self.distinct and len(set(items)) != len(items):
            raise Mismatch(self.what)
        return type(value)(items)


@dataclass(frozen=True)
class Unused:
    """A fastreid key that cift's runs do not use: it must keep fastreid's default. `reason`
    says what reads it (or why cift does not), `instead` names the key to use, if any."""

    reason: str
    instead: str = ""

    def message(self, default) -> str:
        hint = f"; use {self.instead}" if self.instead else ""
        return f"{default!r} (fastreid's default): not used by cift ({self.reason}){hint}"


class Rule:
    """A key's kind and its relations to other keys."""

    def __init__(self, kind, *relations: Relation):
        self.kind, self.relations = kind, relations


class Key(Rule):
    """A cift key: its default, kind and relations (the default passes the kind's check)."""

    def __init__(self, default, kind, *relations: Relation):
        super().__init__(kind, *relations)
        self.default = default


def get_key(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def set_key(cfg, key: str, value) -> None:
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node[part]
    dict.__setitem__(node, last, value)  # also on an unfrozen CfgNode's leaf; no yacs checks


def _rule(entry) -> Rule:
    return entry if isinstance(entry, Rule) else Rule(entry)


def _same_container(value, default):
    """`value` as the container type of `default` (a YAML list for a tuple default)."""
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return type(default)(value)
    return value


def checked_value(key: str, value, entry, default):
    """`value` of `key` checked against its kind (not its relations), as the type the config
    holds (an int given for a float key becomes a float; a list a tuple where the default is
    a tuple). Raises Mismatch."""
    kind = _rule(entry).kind
    if isinstance(kind, Unused):
        if _same_container(value, default) != default:
            raise Mismatch(kind.message(default))
        return default
    return _same_container(kind.check(value), default)


def _error(key: str, value, what: str, origins: Mapping[str, str]) -> CiftInputError:
    where = f"{origins[key]}: " if origins.get(key) else ""
    return CiftInputError(f"{where}{key} {value!r}: expected {what}")


def check_rules(cfg, schema: Mapping[str, Any], defaults, origins: Mapping[str, str]) -> None:
    """Check every key of `schema` in the unfrozen `cfg`: its kind (values stored back in the
    config's types), then every relation; the keys a file or option set (`origins`) before the
    defaults they rely on. The first failure raises CiftInputError naming the key, its value
    and what was expected (and the file that set it)."""
    order = sorted(schema, key=lambda key: key not in origins)
    for key in order:
        value = get_key(cfg, key)
        try:
            set_key(cfg, key, checked_value(key, value, schema[key], get_key(defaults, key)))
        except Mismatch as err:
            raise _error(key, value, str(err), origins) from None
    for key in order:
        value = get_key(cfg, key)
        for relation in _rule(schema[key]).relations:
            what = relation(value, cfg)
            if what:
                raise _error(key, value, what, origins)

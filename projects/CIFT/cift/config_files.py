"""Config YAML files and KEY VALUE options merged into a config: the one place where their
structure is checked, each failure one line naming the file and the key.

A file is UTF-8 text holding a mapping of keys; `_BASE_` names a file it builds on (relative
to its own folder), whose keys it overrides; a chain of bases must not come back to a file it
has passed. Every key must exist in the config, a group of keys (SOLVER) takes a mapping and a
key a value. Values are decoded as fastreid's (yacs) merge decodes them: a string that reads as
a Python literal ("(1, 10)", "1e-3") is that literal. Their kinds are the schema's business
(:mod:`cift.config_schema`), checked after the merge.
"""
from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Mapping

import yaml

from .errors import CiftInputError

BASE_KEY = "_BASE_"


def decode_value(value):
    """yacs' decoding: a string that is a Python literal becomes that literal."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _yaml_problem(err: yaml.YAMLError) -> str:
    """'line L column C: <problem>' of a YAML parser error."""
    mark = getattr(err, "problem_mark", None)
    problem = _one_line(getattr(err, "problem", None) or err)
    return problem if mark is None else f"line {mark.line + 1} column {mark.column + 1}: {problem}"


def _kind_of(value) -> str:
    if value is None:
        return "an empty file"
    return f"a {type(value).__name__} ({_one_line(repr(value))[:60]})"


def read_yaml(path: str) -> dict:
    """The mapping a config file holds (its own keys, `_BASE_` included).

    Raises:
        CiftInputError: the file is missing or unreadable, not UTF-8 (naming the byte offset),
            not YAML, or not a mapping at the top.
    """
    if not os.path.isfile(path):
        raise CiftInputError(f"{path}: config file not found")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CiftInputError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CiftInputError(f"{path}: not UTF-8 text (byte {err.start}: "
                             f"{data[err.start:err.start + 1]!r})") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CiftInputError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    if not isinstance(content, dict):
        raise CiftInputError(f"{path}: expected a mapping of config keys (KEY: value) at the "
                             f"top, got {_kind_of(content)}")
    return content


def base_path(path: str, base) -> str:
    """The file `_BASE_: base` of `path` names: relative to `path`'s folder, `~` expanded."""
    if not isinstance(base, str) or not base:
        raise CiftInputError(f"{path}: {BASE_KEY} {base!r}: expected the path of a config file")
    base = os.path.expanduser(base)
    return os.path.normpath(base if os.path.isabs(base)
                            else os.path.join(os.path.dirname(path), base))


def read_chain(path: str) -> list[tuple[str, dict]]:
    """[(file, its keys without _BASE_)] from the first base to `path`.

    Raises:
        CiftInputError: as `read_yaml`, a missing base (naming it and the file that names it),
            or a cycle of bases (naming the files in order).
    """
    chain, seen = [], []
    while True:
        if os.path.realpath(path) in [os.path.realpath(p) for p in seen]:
            cycle = " -> ".join([*seen[[os.path.realpath(p) for p in seen].index(
                os.path.realpath(path)):], path])
            raise CiftInputError(f"{seen[-1]}: {BASE_KEY} cycle: {cycle}")
        content = read_yaml(path)
        seen.append(path)
        base = content.pop(BASE_KEY, None)
        chain.append((path, content))
        if base is None:
            return chain[::-1]
        parent = base_path(path, base)
        if not os.path.isfile(parent):
            raise CiftInputError(f"{path}: {BASE_KEY} {parent}: config file not found")
        path = parent


def unknown_key(key: str, known: list[str], replaced: Mapping[str, str]) -> str:
    """'KEY: unknown key' with the key that replaced it, or the closest known key."""
    if key in replaced:
        return f"{key}: unknown key; it is now {replaced[key]}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    return f"{key}: unknown key" + (f"; did you mean {close[0]}?" if close else "")


def _leaf_keys(cfg, prefix: str = "") -> list[str]:
    keys = []
    for name, value in cfg.items():
        keys += _leaf_keys(value, f"{prefix}{name}.") if isinstance(value, dict) else [
            prefix + name]
    return keys


def merge_mapping(cfg, updates: Mapping, where: str, origins: dict, replaced: Mapping[str, str],
                  prefix: str = "") -> None:
    """Set the keys of `updates` (nested mappings) in `cfg`, recording `where` they came from.

    Raises:
        CiftInputError: an unknown key, a value for a group of keys or a mapping for a key.
    """
    place = f"{where}: " if where else ""
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if not isinstance(name, str) or name not in cfg:
            raise CiftInputError(place + unknown_key(key, _leaf_keys(cfg, prefix), replaced))
        if isinstance(cfg[name], dict):
            if not isinstance(value, Mapping):
                raise CiftInputError(f"{place}{key} {_one_line(repr(value))[:80]}: expected a "
                                     f"mapping of the keys under {key} (e.g. "
                                     f"{key}.{next(iter(cfg[name]))})")
            merge_mapping(cfg[name], value, where, origins, replaced, key + ".")
            continue
        if isinstance(value, Mapping):
            raise CiftInputError(f"{place}{key} {_one_line(repr(dict(value)))[:80]}: expected a "
                                 "value, not a mapping of keys")
        dict.__setitem__(cfg, name, decode_value(value))
        origins[key] = where


def _nest(key: str, value) -> dict:
    """'A.B.C', v -> {"A": {"B": {"C": v}}}."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def merge_config(cfg, config_file: str = "", opts: list | None = None,
                 replaced: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge a config file (its _BASE_ chain first) and then KEY VALUE options into the
    unfrozen `cfg`; returns {key: the file that set it last, or "" for an option}.

    Raises:
        CiftInputError: as `read_chain` and `merge_mapping`; options that are not KEY VALUE
            pairs of existing keys.
    """
    origins: dict[str, str] = {}
    replaced = replaced or {}
    if config_file:
        for path, content in read_chain(config_file):
            merge_mapping(cfg, content, path, origins, replaced)
    opts = list(opts or [])
    if len(opts) % 2:
        raise CiftInputError(f"command-line options: expected KEY VALUE pairs, got {len(opts)} "
                             f"items (the last, {opts[-1]!r}, has no value)")
    known = _leaf_keys(cfg)
    for key, value in zip(opts[0::2], opts[1::2], strict=True):
        if not isinstance(key, str) or not _exists(cfg, key):
            raise CiftInputError(unknown_key(str(key), known, replaced))
        merge_mapping(cfg, _nest(key, decode_value(value)), "", origins, replaced)
    return origins


def _exists(cfg, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True

"""Command-line flags of train_net and the tools, checked when they are parsed: a flag that
stands for a config key is checked by the config schema (`cift.config.check_value`), other
values by a kind of the schema (`cift.config_schema`), output paths for what they must be. A
usage error is a CiftInputError like any other bad input, which the entry point prints as one
`error: ...` line (exit status 2) before anything is written.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from .config_files import decode_value
from .config_schema import Int, Mismatch, probability
from .errors import CiftInputError

__all__ = ["COUNT", "PROBABILITY", "SEED", "key_flag", "kind_flag", "one_line_errors",
           "output_file", "output_folder"]


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`parser`, its usage errors raised as CiftInputError (one line) rather than printed after
    the usage with an exit; --help still prints and exits."""
    def error(message: str):
        raise CiftInputError(" ".join(message.split()))

    parser.error = error
    return parser


def tool_parser(doc: str) -> argparse.ArgumentParser:
    """A tool's parser: the first paragraph of its docstring `doc` as the description (line
    breaks kept), usage errors in one line (:func:`one_line_errors`)."""
    return one_line_errors(argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter))


def key_flag(key: str) -> Callable[[str], Any]:
    """argparse `type` of a flag that stands for config key `key`: the text read as a config
    value is, and checked as the config would check it."""
    from .config import check_value

    def parse(text: str):
        try:
            return check_value(key, decode_value(text))
        except CiftInputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def kind_flag(kind) -> Callable[[str], Any]:
    """argparse `type` of a flag whose value must be of a schema kind (e.g. Int(1))."""
    def parse(text: str):
        try:
            return kind.check(decode_value(text))
        except Mismatch as err:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {err}") from None

    return parse


COUNT = kind_flag(Int(1))
SEED = kind_flag(Int(0))
PROBABILITY = kind_flag(probability())


def _inside_folders(text: str) -> None:
    """The nearest existing folder above `text` is a folder, not a file."""
    parent = os.path.dirname(os.path.abspath(text))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")


def output_folder(text: str) -> str:
    """argparse `type` of a folder a command writes into: a folder, or absent (it is made)."""
    if not text:
        raise argparse.ArgumentTypeError("'': expected a folder path")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    _inside_folders(text)
    return text


def output_file(text: str) -> str:
    """argparse `type` of a file a command writes: not a folder, nor inside a file."""
    if not text or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a file path, not a folder")
    _inside_folders(text)
    return text

"""The test-time search and transfer settings (TEST.SEARCH.*, TEST.TRANSFER.*), read and checked
in one place for the model, the evaluator and the input checks.

TEST.SEARCH.BACKEND chooses the one neighbour search (:mod:`cift.neighbours`) that serves both
the sparse test-time transfer and the top-R retrieval. It replaces TEST.TRANSFER.BACKEND and
TEST.RETRIEVAL.BACKEND, which still work: set (not ""), they give the backend, and
:func:`check_search_keys` prints one deprecation line for each.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from .errors import CiftInputError, check_choice
from .neighbours import SEARCH_BACKENDS

__all__ = ["DEPRECATED_SEARCH_KEYS", "SEARCH_KEY", "TRANSFER_MODES", "TransferSettings",
           "check_search_keys", "search_backend", "transfer_settings"]

SEARCH_KEY = "TEST.SEARCH.BACKEND"
# Old keys of the search backend: (group under TEST, key), "" meaning not set.
DEPRECATED_SEARCH_KEYS = (("TRANSFER", "BACKEND"), ("RETRIEVAL", "BACKEND"))
# TEST.TRANSFER.MODE: "dense" (the authors' way), "sparse" (top-(k+1) lists), "auto" (sparse
# above SPARSE_ABOVE nodes).
TRANSFER_MODES = ("auto", "dense", "sparse")
_DEFAULT_BACKEND = SEARCH_BACKENDS[0]


@dataclass(frozen=True)
class TransferSettings:
    """How a CIFT model builds its test-time H2FT graph: densely or from neighbour lists."""

    mode: str = "auto"
    sparse_above: int = 0  # TEST.TRANSFER.SPARSE_ABOVE's default
    backend: str = _DEFAULT_BACKEND

    def sparse(self, num_nodes: int) -> bool:
        """Whether a [gallery ; queries] graph of `num_nodes` nodes is built from neighbour
        lists: always for "sparse", above `sparse_above` nodes for "auto", never for "dense"."""
        return self.mode == "sparse" or (self.mode == "auto" and num_nodes > self.sparse_above)


def _old_backends(cfg) -> list[tuple[str, str]]:
    """[(old key, value)] of the deprecated backend keys that are set."""
    found = []
    for group, key in DEPRECATED_SEARCH_KEYS:
        node = cfg.TEST.get(group)
        value = node.get(key, "") if node is not None else ""
        if value != "":
            found.append((f"TEST.{group}.{key}", value))
    return found


def search_backend(cfg) -> str:
    """The neighbour search of the test-time transfer and the top-R retrieval.

    TEST.SEARCH.BACKEND, unless it keeps its default and a deprecated key is set, which then
    gives the backend. Raises CiftInputError naming the key for an unknown backend, and naming
    both keys when two of them are set to different backends.
    """
    new = cfg.TEST.SEARCH.BACKEND
    check_choice(SEARCH_KEY, new, SEARCH_BACKENDS)
    old = _old_backends(cfg)
    for key, value in old:
        check_choice(key, value, SEARCH_BACKENDS)
    given = ([(SEARCH_KEY, new)] if new != _DEFAULT_BACKEND else []) + old
    for key, value in given[1:]:
        if value != given[0][1]:
            raise CiftInputError(f"{given[0][0]} {given[0][1]!r} and {key} {value!r} disagree: "
                                 f"set only {SEARCH_KEY} (the others are deprecated)")
    return given[0][1] if given else new


def check_search_keys(cfg) -> str:
    """:func:`search_backend`, printing one deprecation line on stderr for each deprecated
    key that is set (the input checks call this once per job)."""
    backend = search_backend(cfg)
    for key, _ in _old_backends(cfg):
        print(f"warning: {key} is deprecated, use {SEARCH_KEY}", file=sys.stderr)
    return backend


def transfer_settings(cfg) -> TransferSettings:
    """TEST.TRANSFER.MODE, TEST.TRANSFER.SPARSE_ABOVE and the search backend, checked."""
    t = cfg.TEST.TRANSFER
    check_choice("TEST.TRANSFER.MODE", t.MODE, TRANSFER_MODES)
    return TransferSettings(mode=t.MODE, sparse_above=t.SPARSE_ABOVE, backend=search_backend(cfg))

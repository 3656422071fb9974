"""TEST.SEARCH.BACKEND, the one key of the neighbour search (test-time transfer and top-R lists):
the deprecated TEST.TRANSFER.BACKEND and TEST.RETRIEVAL.BACKEND still work, with one deprecation
line each, and disagreeing keys are refused. Also the layering the shared modules allow."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastreid.modeling.meta_arch import build_model

from cift import load_config
from cift.engine import validate
from cift.errors import CiftInputError
from cift.search_settings import (
    TransferSettings,
    check_search_keys,
    search_backend,
    transfer_settings,
)
from helpers import DEMO, ROOT
from helpers import DEMO_CIFT as CIFT
from helpers.evaluator import evaluate, noisy
from helpers.runs import TINY

PACKAGE = ROOT / "projects" / "CIFT" / "cift"
NEW, OLD_TRANSFER, OLD_RETRIEVAL = ("TEST.SEARCH.BACKEND", "TEST.TRANSFER.BACKEND",
                                    "TEST.RETRIEVAL.BACKEND")


def cfg(*opts):
    return load_config(DEMO, list(opts))


@pytest.mark.parametrize("opts, backend, deprecated", [
    ((), "torch", []),
    ((NEW, "faiss"), "faiss", []),
    ((OLD_TRANSFER, "faiss"), "faiss", [OLD_TRANSFER]),
    ((OLD_RETRIEVAL, "faiss"), "faiss", [OLD_RETRIEVAL]),
    ((OLD_RETRIEVAL, "torch"), "torch", [OLD_RETRIEVAL]),
    ((OLD_TRANSFER, "faiss", OLD_RETRIEVAL, "faiss"), "faiss", [OLD_TRANSFER, OLD_RETRIEVAL]),
    ((NEW, "faiss", OLD_RETRIEVAL, "faiss"), "faiss", [OLD_RETRIEVAL]),
])
def test_backend_from_the_new_or_a_deprecated_key(opts, backend, deprecated, capsys):
    config = cfg(*opts)
    assert search_backend(config) == backend
    assert capsys.readouterr().err == ""  # reading is silent; the input checks print
    assert check_search_keys(config) == backend
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"warning: {old} is deprecated, use {NEW}" for old in deprecated]


@pytest.mark.parametrize("opts, named", [
    ((OLD_TRANSFER, "faiss", OLD_RETRIEVAL, "torch"), (OLD_TRANSFER, OLD_RETRIEVAL)),
    ((NEW, "faiss", OLD_TRANSFER, "torch"), (NEW, OLD_TRANSFER)),
    ((NEW, "annoy"), (NEW,)),
    ((OLD_RETRIEVAL, "annoy"), (OLD_RETRIEVAL,)),
])
def test_disagreeing_or_unknown_backends_are_refused(opts, named):
    with pytest.raises(CiftInputError) as err:
        search_backend(cfg(*opts))
    assert all(key in str(err.value) for key in named) and "\n" not in str(err.value)


def test_input_checks_print_one_deprecation_line(env, capsys):
    validate.validate(load_config(DEMO, [*TINY, OLD_RETRIEVAL, "torch"]))
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {OLD_RETRIEVAL} is deprecated, use {NEW}"]


@pytest.mark.parametrize("key", [NEW, OLD_TRANSFER])
def test_the_model_receives_the_settings(key):
    model = build_model(load_config(CIFT, [*TINY, "MODEL.HEADS.NUM_CLASSES", "6", key, "faiss",
                                           "TEST.TRANSFER.MODE", "sparse",
                                           "TEST.TRANSFER.SPARSE_ABOVE", "7"]))
    assert model.test_transfer == TransferSettings("sparse", 7, "faiss")
    assert transfer_settings(cfg()) == TransferSettings()
    assert TransferSettings("auto", 7).sparse(8) and not TransferSettings("auto", 7).sparse(7)
    assert TransferSettings("sparse").sparse(1) and not TransferSettings("dense").sparse(10**9)


@pytest.mark.parametrize("key", [NEW, OLD_RETRIEVAL, OLD_TRANSFER])
def test_the_top_r_search_uses_the_backend(key, monkeypatch):
    import cift.evaluation.retrieval as retrieval

    used, search = [], retrieval.nearest_neighbours

    def recording(*args, backend="torch", **kwargs):
        used.append(backend)
        return search(*args, backend=backend, **kwargs)

    monkeypatch.setattr(retrieval, "nearest_neighbours", recording)
    got = evaluate(noisy, "TEST.RETRIEVAL.TOP_R", "6", key, "faiss")
    assert used and set(used) == {"faiss"}
    assert got["all-single"]["R1"] == evaluate(noisy, "TEST.RETRIEVAL.TOP_R", "6")[
        "all-single"]["R1"]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the cift modules a file of the package imports."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            names.add(".".join((*base, *(node.module or "").split("."))).strip("."))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] == "cift"}


def test_evaluation_does_not_import_modeling_and_shared_modules_stay_low():
    for path in (PACKAGE / "evaluation").glob("*.py"):
        assert not any(m.startswith("cift.modeling") for m in imported_modules(path)), path
    for name in ("branches", "neighbours", "search_settings"):
        assert imported_modules(PACKAGE / f"{name}.py") <= {"cift.errors", "cift.neighbours"}

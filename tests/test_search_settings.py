"""TEST.SEARCH.BACKEND, the one key of the neighbour search (test-time transfer and top-R lists),
and TEST.TRANSFER.*: read into the model and the evaluator; the removed backend keys are unknown
keys naming it. Also the layering the shared modules allow."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastreid.modeling.meta_arch import build_model

from cift import load_config
from cift.search_settings import TransferSettings, search_backend, transfer_settings
from helpers import DEMO, ROOT
from helpers import DEMO_CIFT as CIFT
from helpers.errors import one_line_error
from helpers.evaluator import evaluate, noisy
from helpers.runs import TINY

PACKAGE = ROOT / "projects" / "CIFT" / "cift"
KEY = "TEST.SEARCH.BACKEND"


def cfg(*opts):
    return load_config(DEMO, list(opts))


@pytest.mark.parametrize("opts, backend", [((), "torch"), ((KEY, "faiss"), "faiss")])
def test_backend_from_the_key(opts, backend):
    assert search_backend(cfg(*opts)) == backend


@pytest.mark.parametrize("old", ["TEST.TRANSFER.BACKEND", "TEST.RETRIEVAL.BACKEND"])
def test_the_removed_backend_keys_name_the_key_that_replaced_them(old):
    assert one_line_error(cfg, old, "faiss") == f"{old}: unknown key; it is now {KEY}"


def test_an_unknown_backend_is_refused():
    assert one_line_error(cfg, KEY, "annoy") == (
        f"{KEY} 'annoy': expected one of ('torch', 'faiss')")


def test_the_model_receives_the_settings():
    model = build_model(load_config(CIFT, [*TINY, "MODEL.HEADS.NUM_CLASSES", "6", KEY, "faiss",
                                           "TEST.TRANSFER.MODE", "sparse",
                                           "TEST.TRANSFER.SPARSE_ABOVE", "7"]))
    assert model.test_transfer == TransferSettings("sparse", 7, "faiss")
    assert transfer_settings(cfg()) == TransferSettings()
    assert TransferSettings("auto", 7).sparse(8) and not TransferSettings("auto", 7).sparse(7)
    assert TransferSettings("sparse").sparse(1) and not TransferSettings("dense").sparse(10**9)


def test_the_top_r_search_uses_the_backend(monkeypatch):
    import cift.evaluation.retrieval as retrieval

    used, search = [], retrieval.nearest_neighbours

    def recording(*args, backend="torch", **kwargs):
        used.append(backend)
        return search(*args, backend=backend, **kwargs)

    monkeypatch.setattr(retrieval, "nearest_neighbours", recording)
    got = evaluate(noisy, "TEST.RETRIEVAL.TOP_R", "6", KEY, "faiss")
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

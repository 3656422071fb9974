"""Shared test set-up: `import cift` first, so fastreid is patched before any test imports it."""
import logging
from pathlib import Path

import pytest

import cift  # noqa: F401
from cift.data.synthetic import ensure_synthetic_sysu

# fastreid's setup_logger is cached and keeps the console stream of the first test that ran
# train_net; under pytest's capture that stream is closed later. Ignore write failures of
# such stale handlers instead of printing "--- Logging error ---" into later tests' stderr.
logging.raiseExceptions = False


@pytest.fixture(scope="session", autouse=True)
def no_checkout_datasets(tmp_path_factory):
    """FASTREID_DATASETS is an empty folder unless a test sets it: no test reads the checkout's
    datasets/, where a user's `make demo` leaves its data set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FASTREID_DATASETS", str(tmp_path_factory.mktemp("no-datasets")))
        yield


@pytest.fixture(scope="session")
def datasets_root(tmp_path_factory) -> Path:
    """A tiny SyntheticVI tree (12 identities, 4 of them test) for end-to-end runs; tests that
    alter images copy it first."""
    root = tmp_path_factory.mktemp("datasets")
    ensure_synthetic_sysu(root / "SyntheticVI", num_ids=12, images_per_camera=10, test_ids=4,
                          val_ids=2, seed=0)
    return root


@pytest.fixture(scope="session")
def demo_run(datasets_root, tmp_path_factory) -> tuple[Path, dict]:
    """One finished 2-epoch train_net run of the demo baseline on the tiny tree (TINY), and its
    results; tests that write into the run folder copy it first."""
    from helpers.runs import args, train_net

    out = tmp_path_factory.mktemp("demo_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FASTREID_DATASETS", str(datasets_root))
        results = train_net.main(args(out=out))
    return out, results


@pytest.fixture()
def env(datasets_root, monkeypatch) -> Path:
    """FASTREID_DATASETS pointing at the tiny SyntheticVI tree, for one test."""
    monkeypatch.setenv("FASTREID_DATASETS", str(datasets_root))
    return datasets_root

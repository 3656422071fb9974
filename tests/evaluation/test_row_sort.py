"""The threaded row argsort is numpy's argsort, ties included."""
import numpy as np
import pytest

from cift.evaluation import row_sort


@pytest.mark.parametrize("shape, threads", [((1000, 700), 2), ((1001, 300), 3), ((7, 5), 2),
                                            ((1, 300_000), 4), ((600, 600), 1)])
def test_equal_to_numpys_argsort_with_ties(shape, threads, monkeypatch):
    monkeypatch.setattr(row_sort, "_THREADS", threads)
    monkeypatch.setattr(row_sort, "_POOL", None)
    rng = np.random.default_rng(sum(shape))
    coarse = np.round(rng.standard_normal(shape), 1)  # many exact ties
    for matrix in (coarse, coarse.astype(np.float32), rng.standard_normal(shape)):
        got = row_sort.argsort_rows(matrix)
        assert got.dtype == np.intp and np.array_equal(got, np.argsort(matrix, axis=1))


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1)])
def test_threads_follow_omp_num_threads(value, expected, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert row_sort.sort_threads() == expected


@pytest.mark.parametrize("value", ["", "0", "two", "-2"])
def test_threads_without_a_usable_omp_num_threads_are_the_cpus(value, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert row_sort.sort_threads() >= 1

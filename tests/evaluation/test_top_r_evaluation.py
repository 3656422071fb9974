"""TEST.RETRIEVAL: the evaluator scores trials from top-R lists with the full ranking's CMC."""
import numpy as np
import pytest
import torch

from cift.errors import CiftInputError
from cift.evaluation import format_protocol_table
from cift.evaluation.retrieval import check_retrieval, feature_search
from cift.modeling.graph import GraphSettings
from cift.modeling.transfer import test_time_transfer
from helpers import DEMO, SETTINGS
from helpers.evaluator import cfg, evaluate, noisy
from helpers.runs import args, run_cli, train_net

RANKS = ("R1", "R5", "R10", "R20")


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("top_r", [1, 6, 1000])
def test_top_r_keeps_the_cmc_and_truncates_ap(top_r, backend):
    full = evaluate(noisy)
    got = evaluate(noisy, "TEST.RETRIEVAL.TOP_R", str(top_r), "TEST.SEARCH.BACKEND", backend)
    for setting in SETTINGS:
        assert list(got[setting]) == [n for m in (*RANKS, f"mAP@{top_r}") for n in (m, m + "_std")]
        for name in RANKS:
            assert got[setting][name] == pytest.approx(full[setting][name], abs=1e-9)
        assert got[setting][f"mAP@{top_r}"] <= full[setting]["mAP"] + 1e-9
        if top_r == 1000:  # every gallery: truncated AP is AP
            assert got[setting]["mAP@1000"] == pytest.approx(full[setting]["mAP"], abs=1e-9)
    assert got["metric"] == got["all-single"][f"mAP@{top_r}"]
    assert "mAP@%d" % top_r in format_protocol_table(got)


def test_top_r_transfers_each_trial_before_the_search():
    def two_branches(test_items):
        f = noisy(test_items)
        return np.stack([f, f[:, ::-1].copy()], axis=1)

    def transfer(gallery, queries, branch):
        g, q = test_time_transfer(torch.from_numpy(gallery), torch.from_numpy(queries),
                                  GraphSettings())
        return g.numpy(), q.numpy()

    full = evaluate(two_branches, transfer=transfer)
    got = evaluate(two_branches, "TEST.RETRIEVAL.TOP_R", "4", transfer=transfer)
    assert set(got) == {"CIFT", "CIFT\u2020", "metric"}
    for method in ("CIFT", "CIFT\u2020"):
        for setting in SETTINGS:
            for name in RANKS:
                assert got[method][setting][name] == pytest.approx(full[method][setting][name],
                                                                   abs=1e-9)
    assert got["CIFT"]["all-single"]["R1"] != got["CIFT\u2020"]["all-single"]["R1"]


def test_feature_search_ranks_by_inner_product_within_the_candidates():
    # Rows of different lengths: the search ranks q.g of the features as given (the full
    # rankings' -q.g), which here differs from ranking by cosine.
    rng = np.random.default_rng(0)
    q, g = rng.standard_normal((9, 4)), rng.standard_normal((30, 4)) * rng.uniform(0.2, 3, (30, 1))
    dot = q @ g.T
    cos = dot / np.linalg.norm(q, axis=1, keepdims=True) / np.linalg.norm(g, axis=1)
    search = feature_search(q, g)
    rows, columns = np.array([1, 4, 8]), np.arange(0, 30, 3)
    np.testing.assert_array_equal(search(rows, None, 5), np.argsort(-dot[rows], axis=1)[:, :5])
    np.testing.assert_array_equal(search(rows, columns, 50),
                                  np.argsort(-dot[rows][:, columns], axis=1))
    assert not np.array_equal(np.argsort(-dot[rows], axis=1)[:, :5],
                              np.argsort(-cos[rows], axis=1)[:, :5])


@pytest.mark.parametrize("opts, match", [
    (("TEST.RETRIEVAL.TOP_R", "-1"), "TOP_R -1"),
    (("TEST.SEARCH.BACKEND", "annoy"), "TEST.SEARCH.BACKEND 'annoy'"),
    (("TEST.RETRIEVAL.TOP_R", "10", "TEST.RERANK.ENABLED", "True"), "RERANK"),
])
def test_bad_retrieval_settings_are_named(opts, match):
    with pytest.raises(CiftInputError, match=match):
        check_retrieval(cfg(*opts))


def test_train_net_rejects_bad_retrieval_in_one_line_before_writing(env, tmp_path, capsys):
    out = tmp_path / "never"
    rc = run_cli("--config-file", DEMO, "TEST.RETRIEVAL.TOP_R", "-3", "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "TEST.RETRIEVAL.TOP_R -3" in err
    assert not out.exists()


def test_training_run_reports_top_r_metrics(env, tmp_path):
    results = train_net.main(args("SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "1",
                                  "TEST.RETRIEVAL.TOP_R", "5", out=tmp_path / "run"))
    for setting in SETTINGS:
        assert {"R1", "R20", "mAP@5"} <= set(results[setting])
        assert "mINP" not in results[setting]
    assert results["metric"] == results["all-single"]["mAP@5"]

"""Topology measures (supplementary eqs. 1-3, affinity error rate): hand-worked examples and a
plain pair-by-pair loop written here."""

import itertools
import math

import numpy as np
import pytest
import torch

from cift.analysis.topology import (
    affinity_error_rate,
    affinity_pair_order,
    affinity_quality,
    cosine_distance_matrix,
    feature_quality,
    grouping_margin,
    pair_masks,
)
from cift.modeling.graph import GraphSettings, affinity

PIDS = [0, 0, 1, 1]
# Hand-worked: GR = mean negative distance - mean positive distance per row.
DIST = [[0.0, 0.2, 0.8, 0.6],
        [0.2, 0.0, 0.5, 0.9],
        [0.8, 0.5, 0.0, 0.1],
        [0.6, 0.9, 0.1, 0.0]]
GR = [0.7 - 0.2, 0.7 - 0.2, 0.65 - 0.1, 0.75 - 0.1]


def loop_margin(dist, row_pids, col_pids, square, allowed=None):
    """GR(X^i) as eq. 1 writes it: every (positive j, negative k) pair, then the mean."""
    out = []
    for i, pi in enumerate(row_pids):
        cols = [c for c in range(len(col_pids)) if not (square and c == i)
                and (allowed is None or allowed[i][c])]
        pos = [j for j in cols if col_pids[j] == pi]
        neg = [k for k in cols if col_pids[k] != pi]
        margins = [dist[i][k] - dist[i][j] for j, k in itertools.product(pos, neg)]
        out.append(sum(margins) / len(margins) if margins else math.nan)
    return out


def loop_quality(a, row_pids, col_pids, square, allowed=None):
    """Q_A as read here: rows whose every positive beats every negative, over valid rows."""
    good = valid = 0
    for i, pi in enumerate(row_pids):
        cols = [c for c in range(len(col_pids)) if not (square and c == i)
                and (allowed is None or allowed[i][c])]
        pos = [a[i][j] for j in cols if col_pids[j] == pi]
        neg = [a[i][k] for k in cols if col_pids[k] != pi]
        if pos and neg:
            valid += 1
            good += all(p > n for p in pos for n in neg)
    return good / valid if valid else math.nan


def test_grouping_margin_hand_worked():
    assert grouping_margin(torch.tensor(DIST), PIDS).tolist() == pytest.approx(GR)


def test_pair_masks_square_and_rectangular():
    pos, neg = pair_masks(PIDS)
    assert pos.tolist() == [[False, True, False, False], [True, False, False, False],
                            [False, False, False, True], [False, False, True, False]]
    assert not (pos | neg).diagonal().any()
    pos, neg = pair_masks([0, 1], [0, 0, 1], allowed=[[True, False, True], [True, True, True]])
    assert pos.tolist() == [[True, False, False], [False, False, True]]
    assert neg.tolist() == [[False, False, True], [True, True, False]]
    with pytest.raises(ValueError, match="allowed must be"):
        pair_masks([0, 1], [0, 1], allowed=[[True]])


@pytest.mark.parametrize("seed", range(3))
def test_grouping_margin_matches_pair_loop(seed):
    g = torch.Generator().manual_seed(seed)
    row_pids = torch.randint(0, 3, (7,), generator=g)
    col_pids = torch.randint(0, 3, (9,), generator=g)
    dist = torch.rand(7, 9, generator=g, dtype=torch.float64)
    allowed = torch.rand(7, 9, generator=g) > 0.3
    got = grouping_margin(dist, row_pids, col_pids, allowed)
    want = loop_margin(dist.tolist(), row_pids.tolist(), col_pids.tolist(), False,
                       allowed.tolist())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, equal_nan=True)
    square = torch.rand(7, 7, generator=g, dtype=torch.float64)
    want = loop_margin(square.tolist(), row_pids.tolist(), row_pids.tolist(), True)
    np.testing.assert_allclose(grouping_margin(square, row_pids).numpy(), want, rtol=1e-12,
                               equal_nan=True)


def test_feature_quality_hand_worked():
    e = torch.eye(3, dtype=torch.float64)
    collapsed = e[[0, 0, 1, 1, 2, 2]]  # each identity on its own orthogonal point
    assert float(feature_quality(collapsed, [0, 0, 1, 1, 2, 2])) == pytest.approx(1.0)
    assert float(feature_quality(torch.ones(4, 3), PIDS)) == pytest.approx(0.0)
    # swapped: each sample sits on the other identity's point -> positives 1 apart, one of the
    # two negatives coincides: GR = (0 + 1) / 2 - 1 = -0.5 for every sample
    swapped = e[[0, 1, 0, 1]]
    assert float(feature_quality(swapped, PIDS)) == pytest.approx(-0.5)
    # scale does not matter (cosine distance)
    assert float(feature_quality(5 * collapsed, [0, 0, 1, 1, 2, 2])) == pytest.approx(1.0)


def test_feature_quality_rectangular_and_numpy():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    g = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # query 0 (id 0): positive g0 (D 0), negatives g1 (0.4), g2 (1) -> 0.7
    # query 1 (id 1): positive g2 (D 0), negatives g0 (1), g1 (0.2) -> 0.6
    got = feature_quality(q, [0, 1], g, [0, 2, 1])
    assert float(got) == pytest.approx(0.65)
    with pytest.raises(ValueError, match="go together"):
        feature_quality(q, [0, 1], g)


def test_samples_without_a_positive_or_negative_are_left_out():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    margins = grouping_margin(cosine_distance_matrix(x), [0, 0, 1])
    assert math.isnan(margins[2]) and not math.isnan(margins[0])
    assert float(feature_quality(x, [0, 0, 1])) == pytest.approx(float(margins[:2].mean()))
    assert math.isnan(float(feature_quality(x, [0, 1, 2])))  # nobody has a positive
    assert math.isnan(float(affinity_quality(torch.rand(3, 3), [0, 1, 2])))


def test_affinity_quality_perfect_reversed_and_mixed():
    same = torch.tensor([[p == q for q in PIDS] for p in PIDS], dtype=torch.float64)
    perfect = 0.1 + 0.8 * same          # positives 0.9, negatives 0.1
    assert float(affinity_quality(perfect, PIDS)) == 1.0
    assert float(affinity_quality(1 - perfect, PIDS)) == 0.0
    assert float(affinity_pair_order(perfect, PIDS)) == 1.0
    assert float(affinity_pair_order(1 - perfect, PIDS)) == 0.0
    assert float(affinity_pair_order(torch.ones(4, 4), PIDS)) == 0.5  # ties count 1/2
    mixed = perfect.clone()
    mixed[3, 0] = 0.95  # row 3: a negative beats its positive
    assert float(affinity_quality(mixed, PIDS)) == 0.75
    mixed[2, 1] = 0.9  # row 2: a negative ties its positive: not strictly larger
    assert float(affinity_quality(mixed, PIDS)) == 0.5


def test_affinity_quality_is_all_pairs_per_sample_not_per_pair():
    # one row, 2 positives (0.9, 0.3) and 2 negatives (0.5, 0.1): 3 of 4 pairs ordered
    a = torch.tensor([[0.0, 0.9, 0.3, 0.5, 0.1]])
    assert float(affinity_quality(a, [0], [0, 0, 0, 1, 1],
                                  allowed=[[False, True, True, True, True]])) == 0.0
    assert float(affinity_pair_order(a, [0], [0, 0, 0, 1, 1],
                                     allowed=[[False, True, True, True, True]])) == 0.75


@pytest.mark.parametrize("seed", range(3))
def test_affinity_quality_matches_loop(seed):
    g = torch.Generator().manual_seed(seed)
    pids = torch.randint(0, 3, (8,), generator=g)
    # coarse values so that ties happen
    a = torch.randint(0, 4, (8, 8), generator=g).double()
    assert float(affinity_quality(a, pids)) == pytest.approx(
        loop_quality(a.tolist(), pids.tolist(), pids.tolist(), True))
    cols = torch.randint(0, 3, (5,), generator=g)
    allowed = torch.rand(8, 5, generator=g) > 0.2
    rect = torch.randint(0, 4, (8, 5), generator=g).double()
    want = loop_quality(rect.tolist(), pids.tolist(), cols.tolist(), False, allowed.tolist())
    got = float(affinity_quality(rect, pids, cols, allowed))
    assert got == pytest.approx(want) or (math.isnan(got) and math.isnan(want))


def test_affinity_quality_depends_only_on_row_order():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    pids = torch.arange(4).repeat_interleave(3)
    cos = 1 - cosine_distance_matrix(x)
    is_query = torch.arange(12) >= 8
    dense = affinity(x, is_query, GraphSettings("gft", k=12))  # every entry kept
    dense_h2ft = affinity(x, is_query, GraphSettings(k=12))
    assert float(affinity_quality(dense, pids)) == float(affinity_quality(cos, pids))
    # H2FT rows that may not see a column must not count it
    allowed = dense_h2ft > 0
    assert float(affinity_quality(dense_h2ft, pids, pids, allowed & ~torch.eye(12).bool())) \
        == pytest.approx(loop_quality(cos.tolist(), pids.tolist(), pids.tolist(), True,
                                      allowed.tolist()))


def test_affinity_quality_of_a_top_k_affinity_with_many_positives_is_zero():
    # 6 samples per identity, well separated, k = 4: each row keeps 3 of its 5 positives and
    # the 2 dropped positives tie with the negatives at 0 (why Q_A takes the dense affinity).
    e = torch.eye(2, dtype=torch.float64)
    x = e[[0] * 6 + [1] * 6] + 0.01 * torch.randn(12, 2, generator=torch.Generator()
                                                  .manual_seed(0), dtype=torch.float64)
    pids = [0] * 6 + [1] * 6
    no_query = torch.zeros(12, dtype=torch.bool)
    assert float(affinity_quality(affinity(x, no_query, GraphSettings("gft", k=4)), pids)) == 0.0
    assert float(affinity_quality(affinity(x, no_query, GraphSettings("gft", k=12)), pids)) == 1.0


def test_affinity_error_rate_hand_worked():
    # row 0: self 0.4, right 0.3, wrong 0.2 and 0.1 -> mass 0.3 / 0.6 = 0.5, edges 2 / 3
    # row 1: self 0.5, right 0.5 -> 0, 0; row 2: all mass on itself -> no edge, left out
    a = torch.tensor([[0.4, 0.3, 0.2, 0.1],
                      [0.5, 0.5, 0.0, 0.0],
                      [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    rows, cols = [0, 0, 1], [0, 0, 1, 1]
    # the self column of row i is column i here: leave it out with `allowed`
    allowed = ~torch.eye(3, 4, dtype=torch.bool)
    err = affinity_error_rate(a, rows, cols, allowed)
    assert float(err.mass) == pytest.approx((0.5 + 0.0) / 2)
    assert float(err.edges) == pytest.approx((2 / 3 + 0.0) / 2)
    # k = 1 on the same rows: the strongest other entry only (right for rows 0, 1)
    err = affinity_error_rate(a, rows, cols, allowed, k=1)
    assert float(err.mass) == 0.0 and float(err.edges) == 0.0
    # square: the diagonal is left out automatically; a reversed affinity is all wrong
    same = torch.tensor([[p == q for q in PIDS] for p in PIDS], dtype=torch.float64)
    assert float(affinity_error_rate(same, PIDS).mass) == 0.0
    assert float(affinity_error_rate(1 - same, PIDS).edges) == 1.0
    assert math.isnan(float(affinity_error_rate(torch.eye(4), PIDS).mass))
    with pytest.raises(ValueError, match="k must be"):
        affinity_error_rate(same, PIDS, k=0)


def test_leading_dimensions_are_independent_sets():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, 5, generator=g, dtype=torch.float64)
    pids = [0, 0, 1, 1, 2, 2, 3, 3]
    batched = feature_quality(x, pids)
    assert batched.shape == (3,)
    for b in range(3):
        assert float(batched[b]) == pytest.approx(float(feature_quality(x[b], pids)))
    a = torch.rand(3, 8, 8, generator=g, dtype=torch.float64)
    for fn in (affinity_quality, affinity_pair_order):
        batched = fn(a, pids)
        assert batched.shape == (3,)
        assert [float(fn(a[b], pids)) for b in range(3)] == pytest.approx(batched.tolist())
    err = affinity_error_rate(a, pids)
    assert err.mass.shape == (3,)
    assert float(err.mass[1]) == pytest.approx(float(affinity_error_rate(a[1], pids).mass))

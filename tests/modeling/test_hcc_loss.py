"""hcc_loss against a plain loop reference, hand-worked values and invariances."""

import math

import pytest
import torch

from cift.modeling.losses import hcc_loss

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
TOLERANCES = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
}


# ---------------------------------------------------------------------------------------------
# Reference: loops over samples and centres, one pair at a time.
# ---------------------------------------------------------------------------------------------


def reference_hcc(x, pids, is_visible, level, margin):
    rho = {"euc": 0.6, "kl": 6.0}[level] if margin is None else margin
    n = x.shape[0]
    values = [x[i].softmax(dim=0) if level == "kl" else x[i] for i in range(n)]
    pid_list = [int(p) for p in pids]
    vis_list = [bool(v) for v in is_visible]

    centres = {}  # (visible, pid) -> centre
    for key in sorted(set(zip(vis_list, pid_list, strict=True))):
        members = [values[i] for i in range(n) if (vis_list[i], pid_list[i]) == key]
        total = members[0]
        for member in members[1:]:
            total = total + member
        centres[key] = total / len(members)

    def distance(sample, centre):
        if level == "euc":
            return torch.sqrt(torch.clamp(((sample - centre) ** 2).sum(), min=1e-12))
        log_p = torch.log(torch.clamp(sample, min=1e-9))
        log_q = torch.log(torch.clamp(centre, min=1e-9))
        # KL(q || p) with q (and log q) detached: only the sample gets this direction's gradient.
        kl_qp = (centre.detach() * (log_q.detach() - log_p)).sum()
        # KL(p || q) with p (and log p) detached: only the centre gets this direction's gradient.
        kl_pq = (sample.detach() * (log_p.detach() - log_q)).sum()
        return kl_qp + kl_pq

    pulls, pushes = [], []
    for i in range(n):
        for (vis, pid), centre in centres.items():
            d = distance(values[i], centre)
            if pid == pid_list[i] and vis != vis_list[i]:
                pulls.append(d)
            elif pid != pid_list[i]:
                pushes.append(torch.clamp(rho - d, min=0))
    zero = x.sum() * 0
    pull = sum(pulls, zero) / len(pulls) if pulls else zero
    push = sum(pushes, zero) / len(pushes) if pushes else zero
    return pull + push


# ---------------------------------------------------------------------------------------------
# Batch layouts: (visible pids, infrared pids), in batch order.
# ---------------------------------------------------------------------------------------------


def _pk(p, k):
    return [pid for pid in range(p) for _ in range(k)]


LAYOUTS = {
    # The sampler's [P x K visible ; P x K infrared].
    "pk": (_pk(4, 3), _pk(4, 3)),
    # Identity 0 only visible, identity 3 only infrared: they have no pull pair.
    "one_modality_ids": ([0, 0, 1, 1, 2, 5, 5], [1, 2, 2, 2, 3, 3, 5]),
    # Unequal group sizes, non-contiguous identities.
    "unequal_groups": ([7, 7, 7, 7, 2, 9], [9, 9, 9, 2, 7]),
    # Singletons everywhere (every centre is a sample).
    "singletons": ([0, 1, 2], [2, 1, 0]),
}


def make_batch(layout, level, dtype, device, dim=5, seed=0, interleave=False):
    vis_pids, ir_pids = LAYOUTS[layout]
    pids = torch.tensor(vis_pids + ir_pids, dtype=torch.int64)
    is_visible = torch.tensor([True] * len(vis_pids) + [False] * len(ir_pids))
    gen = torch.Generator().manual_seed(seed)
    if interleave:
        order = torch.randperm(len(pids), generator=gen)
        pids, is_visible = pids[order], is_visible[order]
    # Logits at scale 3 give symmetric KLs on both sides of the tested margins.
    scale = 3.0 if level == "kl" else 1.0
    x = scale * torch.randn(len(pids), dim, generator=gen, dtype=torch.float64)
    x = x.to(dtype=dtype, device=device).requires_grad_(True)
    return x, pids.to(device), is_visible.to(device)


def margins_for(level):
    # None (the default), plus one where the hinge is active for some pairs and not for others.
    return [None, {"euc": 2.5, "kl": 1.5}[level]]


CASES = [
    (layout, level, margin, interleave)
    for layout in LAYOUTS
    for level in ("euc", "kl")
    for margin in margins_for(level)
    for interleave in (False, True)
]


def check_against_reference(layout, level, margin, interleave, dtype, device):
    x, pids, is_visible = make_batch(layout, level, dtype, device, interleave=interleave)
    loss = hcc_loss(x, pids, is_visible, level=level, margin=margin)
    (grad,) = torch.autograd.grad(loss, x)

    x_ref = x.detach().clone().requires_grad_(True)
    expected = reference_hcc(x_ref, pids, is_visible, level, margin)
    (expected_grad,) = torch.autograd.grad(expected, x_ref)

    assert loss.shape == ()
    assert loss.dtype == dtype and loss.device == x.device
    torch.testing.assert_close(loss, expected, **TOLERANCES[dtype])
    torch.testing.assert_close(grad, expected_grad, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout,level,margin,interleave", CASES)
def test_matches_reference_value_and_gradient(layout, level, margin, interleave, dtype):
    check_against_reference(layout, level, margin, interleave, dtype, "cpu")


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("level", ["euc", "kl"])
def test_matches_reference_on_cuda(level, dtype):
    for layout in LAYOUTS:
        check_against_reference(layout, level, None, True, dtype, "cuda")


@pytest.mark.parametrize("level", ["euc", "kl"])
def test_custom_margins_exercise_both_sides_of_the_hinge(level):
    # Guards the reference comparison above: the custom margin leaves some push pairs active and
    # some inactive, and the default margin differs from it.
    x, pids, is_visible = make_batch("pk", level, torch.float64, "cpu")
    losses = {m: hcc_loss(x, pids, is_visible, level, m).item() for m in (None, 0.0, 1.5, 2.5)}
    custom = {"euc": 2.5, "kl": 1.5}[level]
    pull_only = losses[0.0]
    assert pull_only < losses[custom] < pull_only + custom
    assert losses[None] != pytest.approx(losses[custom])


@pytest.mark.parametrize("level", ["euc", "kl"])
def test_default_margin(level):
    x, pids, is_visible = make_batch("unequal_groups", level, torch.float64, "cpu")
    default = {"euc": 0.6, "kl": 6.0}[level]
    torch.testing.assert_close(
        hcc_loss(x, pids, is_visible, level), hcc_loss(x, pids, is_visible, level, default)
    )


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("level", ["euc", "kl"])
def test_permutation_invariance(layout, level):
    x, pids, is_visible = make_batch(layout, level, torch.float64, "cpu", seed=3)
    loss = hcc_loss(x, pids, is_visible, level)
    (grad,) = torch.autograd.grad(loss, x)
    gen = torch.Generator().manual_seed(11)
    for _ in range(3):
        order = torch.randperm(len(pids), generator=gen)
        x_perm = x.detach()[order].requires_grad_(True)
        loss_perm = hcc_loss(x_perm, pids[order], is_visible[order], level)
        (grad_perm,) = torch.autograd.grad(loss_perm, x_perm)
        torch.testing.assert_close(loss_perm, loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad_perm, grad[order], rtol=1e-12, atol=1e-12)


def test_hand_worked_euclidean_1d():
    # 1-D features, margin 0.6.
    #   visible  id 0: 0.0, 0.2 -> centre 0.1     infrared id 0: 0.5      -> centre 0.5
    #   visible  id 1: 1.0      -> centre 1.0     infrared id 1: 0.7, 1.1 -> centre 0.9
    # Pull (own identity, other modality's centre):
    #   0.0->0.5: 0.5  0.2->0.5: 0.3  1.0->0.9: 0.1  0.5->0.1: 0.4  0.7->1.0: 0.3  1.1->1.0: 0.1
    #   mean = 1.7 / 6
    # Push max(0, 0.6 - d) to both centres of the other identity (12 pairs):
    #   0.0: d 1.0, 0.9 -> 0, 0      0.2: d 0.8, 0.7 -> 0, 0      1.0: d 0.9, 0.5 -> 0, 0.1
    #   0.5: d 0.5, 0.4 -> 0.1, 0.2  0.7: d 0.6, 0.2 -> 0, 0.4    1.1: d 1.0, 0.6 -> 0, 0
    #   mean = 0.8 / 12
    # loss = 1.7 / 6 + 0.8 / 12 = 0.35
    x = torch.tensor([[0.0], [0.2], [1.0], [0.5], [0.7], [1.1]], dtype=torch.float64)
    pids = torch.tensor([0, 0, 1, 0, 1, 1])
    is_visible = torch.tensor([True, True, True, False, False, False])
    loss = hcc_loss(x, pids, is_visible, "euc")
    assert loss.item() == pytest.approx(0.35, abs=1e-12)


def test_hand_worked_kl_value_and_detached_gradients():
    # One identity seen once in each modality: the centres are the samples themselves and there
    # is no push pair. With p0 = softmax([0, ln 3]) = (1/4, 3/4) and p1 = (3/4, 1/4):
    #   KL(p0 || p1) = 1/4 ln(1/3) + 3/4 ln 3 = 1/2 ln 3 = KL(p1 || p0)
    # Both pull pairs (0 -> centre 1, 1 -> centre 0) have D = ln 3, so loss = ln 3.
    # Gradients: in D(p0, p1) sample 0 gets d/dz0 [-sum p1 log p0] = p0 - p1 and the centre p1
    # gets its own; in D(p1, p0) the centre p0 gets d/dz0 [-sum p1 log p0] = p0 - p1 again.
    # So dL/dz0 = 1/2 (2 (p0 - p1)) = p0 - p1 = (-1/2, 1/2), and dL/dz1 = (1/2, -1/2). Without
    # the detaching, dL/dz0 would also carry the Jacobian of KL(p0 || .) through p0's weights.
    z = torch.tensor([[0.0, math.log(3)], [math.log(3), 0.0]], dtype=torch.float64)
    z.requires_grad_(True)
    loss = hcc_loss(z, torch.tensor([4, 4]), torch.tensor([True, False]), "kl")
    assert loss.item() == pytest.approx(math.log(3), abs=1e-12)
    (grad,) = torch.autograd.grad(loss, z)
    expected = torch.tensor([[-0.5, 0.5], [0.5, -0.5]], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


def test_hand_worked_kl_push():
    # Two identities, visible only: no pull pair. Centres are the samples, p0 = (1/4, 3/4),
    # p1 = (3/4, 1/4), D = ln 3 both ways, so loss = max(0, rho - ln 3) over 2 push pairs.
    z = torch.tensor([[0.0, math.log(3)], [math.log(3), 0.0]], dtype=torch.float64)
    pids, is_visible = torch.tensor([0, 1]), torch.tensor([True, True])
    assert hcc_loss(z, pids, is_visible, "kl").item() == pytest.approx(6 - math.log(3))
    assert hcc_loss(z, pids, is_visible, "kl", margin=1.0).item() == 0.0


@pytest.mark.parametrize("level", ["euc", "kl"])
def test_no_pairs_gives_zero_with_gradient(level):
    # One identity in one modality: neither a pull nor a push pair.
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss = hcc_loss(x, torch.tensor([2, 2, 2]), torch.tensor([False, False, False]), level)
    (grad,) = torch.autograd.grad(loss, x)
    assert loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(x))


def test_empty_batch_gives_zero():
    x = torch.zeros(0, 4, requires_grad=True)
    loss = hcc_loss(x, torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0


def test_zero_distance_has_finite_gradient():
    # Identical samples across modalities: the pull distance is 0 and sqrt must not give NaN.
    x = torch.ones(2, 3, requires_grad=True)
    loss = hcc_loss(x, torch.tensor([1, 1]), torch.tensor([True, False]))
    loss.backward()
    assert torch.isfinite(x.grad).all()

"""CounterfactualRelation (CRI): sampling, averaging, gradients, clamping."""

import pytest
import torch

from cift.modeling.graph import (
    CounterfactualRelation,
    GraphSettings,
    affinity,
    training_query_mask,
)

B, D = 12, 8  # [6 visible ; 6 infrared]
IS_QUERY = training_query_mask(torch.tensor([True] * 6 + [False] * 6), "r2i")


def _features(n=B, d=D, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64).to(dtype)


def _module(num_samples=10, dtype=torch.float32, seed=1):
    module = CounterfactualRelation(B, D, num_samples=num_samples).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # move away from the init so mean and std both matter
        module.mean.copy_(torch.randn(B, D, generator=generator))
        module.std.copy_(torch.rand(B, 1, generator=generator) + 0.5)
    return module


def reference_loop(module, x, is_query, seed, tau_hom=0.4, tau_het=0.2, k=4):
    """Average over samples, one sample at a time, with the forward's random draws."""
    torch.manual_seed(seed)
    eps = torch.randn(module.num_samples, B, D, dtype=module.mean.dtype)
    outputs = []
    for s in range(module.num_samples):
        x_cf = module.mean + module.std.clamp(min=0) * eps[s]
        a_cf = affinity(x_cf, is_query, GraphSettings(tau_hom=tau_hom, tau_het=tau_het, k=k),
                        self_loops=False)
        outputs.append(a_cf @ x)
    return torch.stack(outputs).mean(dim=0)


def test_parameters_and_init():
    module = CounterfactualRelation(64, 2048)
    assert module.num_samples == 10
    assert dict(module.named_parameters()).keys() == {"mean", "std"}
    assert torch.equal(module.mean, torch.zeros(64, 2048))
    assert torch.equal(module.std, torch.ones(64, 1))
    assert "batch_size=64, feat_dim=2048, num_samples=10" in repr(module)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_samples", [1, 3, 10])
def test_average_of_samples(dtype, num_samples):
    module = _module(num_samples, dtype)
    x = _features(dtype=dtype)
    torch.manual_seed(123)
    out = module(x, IS_QUERY, GraphSettings())
    assert out.shape == (B, D) and out.dtype == dtype
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    torch.testing.assert_close(out, reference_loop(module, x, IS_QUERY, 123), **tolerance)


def test_graph_arguments_are_passed_through():
    module, x = _module(4), _features()
    torch.manual_seed(5)
    out = module(x, ~IS_QUERY, GraphSettings(tau_hom=0.3, tau_het=0.1, k=2))
    expected = reference_loop(module, x, ~IS_QUERY, 5, tau_hom=0.3, tau_het=0.1, k=2)
    torch.testing.assert_close(out, expected)


def test_counterfactual_graph_has_no_self_loops():
    # With x = I (d = B), E[Y*] = E[A*]: zero diagonal, rows sum to 1, queries never see queries.
    module = CounterfactualRelation(B, B, num_samples=6)
    torch.manual_seed(9)
    mean_graph = module(torch.eye(B), IS_QUERY, GraphSettings())
    assert (mean_graph.diagonal() == 0).all()
    torch.testing.assert_close(mean_graph.sum(dim=1), torch.ones(B))
    queries = IS_QUERY.nonzero().flatten()
    assert (mean_graph[queries][:, queries] == 0).all()
    assert (mean_graph[~IS_QUERY][:, queries] == 0).all()


def test_deterministic_under_manual_seed():
    module, x = _module(), _features()
    torch.manual_seed(0)
    first = module(x, IS_QUERY, GraphSettings())
    torch.manual_seed(0)
    second = module(x, IS_QUERY, GraphSettings())
    torch.manual_seed(1)
    third = module(x, IS_QUERY, GraphSettings())
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_gradients_reach_mean_std_and_features():
    module = _module()
    x = _features().requires_grad_()
    torch.manual_seed(0)
    loss = (module(x, IS_QUERY, GraphSettings()) * _features(seed=3)).sum()
    loss.backward()
    for name, grad in (("mean", module.mean.grad), ("std", module.std.grad), ("x", x.grad)):
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_gradients_at_init():
    # mean = 0 and std = 1: X* is pure noise, and the gradients still reach both parameters.
    module = CounterfactualRelation(B, D)
    torch.manual_seed(0)
    module(_features(), IS_QUERY, GraphSettings()).pow(2).sum().backward()
    assert module.mean.grad.abs().sum() > 0 and module.std.grad.abs().sum() > 0


def test_negative_std_acts_as_zero():
    module, x = _module(num_samples=5), _features()
    with torch.no_grad():
        module.std.fill_(-0.7)
    torch.manual_seed(0)
    out = module(x, IS_QUERY, GraphSettings())
    # Every sample is X* = mean: the average equals one deterministic graph.
    expected = affinity(module.mean, IS_QUERY, GraphSettings(), self_loops=False) @ x
    torch.testing.assert_close(out, expected)
    single = CounterfactualRelation(B, D, num_samples=1)
    single.load_state_dict(module.state_dict())
    torch.manual_seed(1)
    torch.testing.assert_close(single(x, IS_QUERY, GraphSettings()), out)
    out.sum().backward()
    assert torch.equal(module.std.grad, torch.zeros(B, 1))  # clamped: no gradient below 0


def test_paper_size_is_cheap():
    # N = 64, d = 2048, t = 10: one (10, 64, 64) graph stack, forward and backward.
    is_query = training_query_mask(torch.tensor([True] * 32 + [False] * 32), "i2r")
    module = CounterfactualRelation(64, 2048)
    x = torch.randn(64, 2048, requires_grad=True)
    out = module(x, is_query, GraphSettings())
    out.sum().backward()
    assert out.shape == (64, 2048) and module.mean.grad.shape == (64, 2048)

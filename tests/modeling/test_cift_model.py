"""The CIFT meta-architecture: losses, gradients, parameter groups, inference, test-time graph."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fastreid.modeling.meta_arch import build_model
from fastreid.solver import build_optimizer

from cift import CiftInputError, load_config
from cift.modeling.graph import training_query_mask, transfer
from cift.modeling.meta_arch.cift import BRANCHES
from helpers import DEMO_CIFT

P, K, NUM_CLASSES = 2, 2, 5
BATCH = 2 * P * K
LOSSES = {"loss_ce", "loss_hcc_euc", "loss_hcc_kl", "loss_graph_ce", "loss_graph_hcc_kl",
          "loss_cri_ce"}


def cfg(*opts: str):
    return load_config(DEMO_CIFT, [
        "MODEL.HEADS.NUM_CLASSES", str(NUM_CLASSES), "SOLVER.IMS_PER_BATCH", str(BATCH),
        "MODEL.CIFT.CRI.SAMPLES", "3", *opts])


def batch(size: int = BATCH) -> dict:
    torch.manual_seed(0)
    pids = torch.arange(P).repeat_interleave(K).repeat(2)[:size]
    return {"images": torch.rand(size, 3, 32, 16) * 255, "targets": pids,
            "is_visible": torch.arange(size) < size // 2}


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model(cfg()).train()


def test_loss_dict_has_every_term_and_is_finite(model):
    losses = model(batch())
    assert set(losses) == LOSSES
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())


def test_gradients_reach_cri_parameters_and_backbone(model):
    sum(model(batch()).values()).backward()
    for branch in BRANCHES:
        assert model.counterfactual(branch).mean.grad.abs().sum() > 0
        assert model.counterfactual(branch).std.grad.abs().sum() > 0
    conv = next(p for n, p in model.backbone.named_parameters() if "conv1" in n)
    assert conv.grad.abs().sum() > 0
    for name in ("b", *BRANCHES):
        assert model.heads[name].classifier.weight.grad.abs().sum() > 0


def test_cri_loss_scale_and_switch():
    torch.manual_seed(0)
    without = build_model(cfg("MODEL.CIFT.CRI.ENABLED", "False")).train()
    assert without.cri is None and "loss_cri_ce" not in without(batch())
    torch.manual_seed(0)
    scaled = build_model(cfg("MODEL.LOSSES.CRI_CE.SCALE", "0.0")).train()
    assert scaled(batch())["loss_cri_ce"] == 0


def test_parameter_groups(model):
    """CRI parameters learn at the backbone LR, BNNecks and classifiers at x HEADS_LR_FACTOR."""
    c = cfg()
    optimizer, _ = build_optimizer(c, model)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    base = c.SOLVER.BASE_LR
    for branch in BRANCHES:
        assert lr_of[id(model.counterfactual(branch).mean)] == pytest.approx(base)
        assert lr_of[id(model.counterfactual(branch).std)] == pytest.approx(base)
    for name in ("b", *BRANCHES):
        head = model.heads[name]
        assert lr_of[id(head.classifier.weight)] == pytest.approx(base * c.SOLVER.HEADS_LR_FACTOR)
        assert lr_of[id(head.neck.weight)] == pytest.approx(base * c.SOLVER.HEADS_LR_FACTOR)
        assert id(head.neck.bias) not in lr_of  # frozen at 0


def cri_gradients(model, branch_losses):
    """Gradients of the CRI parameters from the CE of `branch_losses` branches' effects (each
    branch's noise drawn from its own seed)."""
    model.zero_grad()
    inputs = batch()
    pool = model.pooled_features(inputs)
    pids, is_visible = inputs["targets"], inputs["is_visible"]
    total = 0
    for branch in branch_losses:
        torch.manual_seed(BRANCHES.index(branch))
        head = model.heads[branch]
        is_query = training_query_mask(is_visible, branch)
        x = head.neck(pool)
        y = model.branch_affinity(x, is_query, branch) @ x
        y_cf = model.counterfactual(branch)(x, model.graph_query_mask(is_query), k=model.k)
        total = total + F.cross_entropy(head.classifier(y - y_cf), pids)
    total.backward()
    return {n: p.grad.clone() for n, p in model.cri.named_parameters() if p.grad is not None}


def test_cri_parameters_are_shared_by_both_branches(model):
    """One (c: B x 1, k: B x d) set, as the authors' single graph module; both branches'
    losses reach it, and the gradient of their sum is the sum of their gradients."""
    names = {n: tuple(p.shape) for n, p in model.named_parameters() if n.startswith("cri.")}
    assert names == {"cri.mean": (BATCH, 512), "cri.std": (BATCH, 1)}
    assert model.counterfactual("r2i") is model.counterfactual("i2r")
    r2i = cri_gradients(model, ["r2i"])
    i2r = cri_gradients(model, ["i2r"])
    both = cri_gradients(model, ["r2i", "i2r"])
    for n in ("mean", "std"):
        assert r2i[n].abs().sum() > 0 and i2r[n].abs().sum() > 0
        torch.testing.assert_close(both[n], r2i[n] + i2r[n])


def test_cri_noise_is_drawn_per_branch(model, monkeypatch):
    """The authors call their module once per branch, each call drawing its own noise."""
    draws = []
    relation = model.counterfactual("r2i")
    original = relation.sample_features
    monkeypatch.setattr(relation, "sample_features",
                        lambda: draws.append(original()) or draws[-1])
    model(batch())
    assert len(draws) == 2 and not torch.equal(draws[0], draws[1])


def test_per_branch_cri_parameters_option():
    torch.manual_seed(0)
    model = build_model(cfg("MODEL.CIFT.CRI.SHARED", "False")).train()
    names = {n for n, _ in model.named_parameters() if n.startswith("cri.")}
    assert names == {f"cri.{b}.{p}" for b in BRANCHES for p in ("mean", "std")}
    assert model.counterfactual("r2i") is not model.counterfactual("i2r")
    sum(model(batch()).values()).backward()
    for branch in BRANCHES:
        assert model.cri[branch].mean.grad.abs().sum() > 0


def test_batch_of_another_size_is_refused(model):
    with pytest.raises(ValueError, match=str(BATCH)):
        model(batch(BATCH - 4))


def test_inference_returns_both_graph_branches(model):
    model.eval()
    with torch.no_grad():
        out = model(batch())
    assert out.shape == (BATCH, 2, 512)
    pool = model.pooled_features(batch())
    for i, branch in enumerate(BRANCHES):
        torch.testing.assert_close(out[:, i], model.heads[branch].neck(pool))


@pytest.mark.parametrize("graph", ["h2ft", "gft"])
def test_test_time_transfer_matches_the_dense_graph(graph):
    model = build_model(cfg("MODEL.CIFT.GRAPH", graph)).eval()
    torch.manual_seed(1)
    g, q = torch.randn(20, 512), torch.randn(30, 512)
    g_out, q_out = model.transfer_test_features(g, q, "i2r")
    x = F.normalize(torch.cat([g, q]), dim=1)
    is_query = torch.arange(50) >= 20
    if graph == "gft":
        is_query = torch.zeros(50, dtype=torch.bool)
    y = F.normalize(transfer(x, is_query, tau_hom=0.4, tau_het=0.2, k=4), dim=1)
    torch.testing.assert_close(g_out, y[:20], atol=1e-5, rtol=0)
    torch.testing.assert_close(q_out, y[20:], atol=1e-5, rtol=0)


def test_linear_projection_is_used_for_affinities_only():
    model = build_model(cfg("MODEL.CIFT.PROJECTION", "linear")).eval()
    torch.manual_seed(2)
    g, q = torch.randn(10, 512), torch.randn(6, 512)
    with torch.no_grad():
        model.projections["i2r"].weight.copy_(torch.eye(512))
    torch.testing.assert_close(model.transfer_test_features(g, q, "i2r"),
                               build_model(cfg()).eval().transfer_test_features(g, q, "i2r"))
    trained = build_model(cfg("MODEL.CIFT.PROJECTION", "linear")).train()
    sum(trained(batch()).values()).backward()
    assert all(trained.projections[b].weight.grad.abs().sum() > 0 for b in BRANCHES)


@pytest.mark.parametrize("key, value", [("MODEL.CIFT.GRAPH", "gcn"),
                                        ("MODEL.CIFT.PROJECTION", "mlp")])
def test_unknown_graph_options_name_the_key(key, value):
    with pytest.raises(CiftInputError, match=key):
        build_model(cfg(key, value))

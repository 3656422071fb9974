"""The CIFT meta-architecture: losses, gradients, parameter groups, inference, test-time graph."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fastreid.modeling.meta_arch import build_model
from fastreid.solver import build_optimizer

from cift import load_config
from cift.branches import BRANCHES
from cift.modeling.graph import GraphSettings, affinity, training_query_mask
from cift.modeling.losses import hcc_loss
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


def test_losses_are_the_sum_in_the_class_docstring(model):
    """Every term recomputed from the model's parts, in the order of the class docstring's
    sum, with the forward's random draws: equal to the bit."""
    inputs = batch()
    torch.manual_seed(11)
    losses = model(inputs)
    torch.manual_seed(11)
    pool = model.pooled_features(inputs)
    pids, is_visible, s = inputs["targets"], inputs["is_visible"], model.loss_scales
    y_b = model.heads["b"](pool)["logits"]
    expected = {"loss_ce": F.cross_entropy(y_b, pids) * s["ce"],
                "loss_hcc_euc": hcc_loss(pool, pids, is_visible, "euc", s["hcc_euc_margin"])
                * s["hcc_euc"],
                "loss_hcc_kl": hcc_loss(y_b, pids, is_visible, "kl", s["hcc_kl_margin"])
                * s["hcc_kl"]}
    ce, kl, cri_ce = [], [], []
    for branch in ("r2i", "i2r"):
        head = model.heads[branch]
        is_query = is_visible if branch == "r2i" else ~is_visible
        x = head.neck(pool)
        y = affinity(x, is_query, GraphSettings()) @ x
        ce.append(F.cross_entropy(head.classifier(y), pids))
        kl.append(hcc_loss(head.classifier(y), pids, is_visible, "kl", s["hcc_kl_margin"]))
        y_cf = model.cri(x, is_query, GraphSettings())
        cri_ce.append(F.cross_entropy(head.classifier(y - y_cf), pids))
    expected["loss_graph_ce"] = (ce[0] + ce[1]) / 2 * s["graph_ce"]
    expected["loss_graph_hcc_kl"] = (kl[0] + kl[1]) / 2 * s["graph_hcc_kl"]
    expected["loss_cri_ce"] = (cri_ce[0] + cri_ce[1]) / 2 * s["cri_ce"]
    assert set(losses) == set(expected)
    for name, value in expected.items():
        assert torch.equal(losses[name], value), name


def test_gradients_reach_cri_parameters_and_backbone(model):
    sum(model(batch()).values()).backward()
    assert model.cri.mean.grad.abs().sum() > 0 and model.cri.std.grad.abs().sum() > 0
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
    for parameter in model.cri.parameters():
        assert lr_of[id(parameter)] == pytest.approx(base)
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
        y = affinity(x, is_query, model.graph) @ x
        y_cf = model.cri(x, is_query, model.graph)
        total = total + F.cross_entropy(head.classifier(y - y_cf), pids)
    total.backward()
    return {n: p.grad.clone() for n, p in model.cri.named_parameters() if p.grad is not None}


def test_cri_parameters_are_shared_by_both_branches(model):
    """One (c: B x 1, k: B x d) set, as the authors' single graph module; both branches'
    losses reach it, and the gradient of their sum is the sum of their gradients."""
    names = {n: tuple(p.shape) for n, p in model.named_parameters() if n.startswith("cri.")}
    assert names == {"cri.mean": (BATCH, 512), "cri.std": (BATCH, 1)}
    r2i = cri_gradients(model, ["r2i"])
    i2r = cri_gradients(model, ["i2r"])
    both = cri_gradients(model, ["r2i", "i2r"])
    for n in ("mean", "std"):
        assert r2i[n].abs().sum() > 0 and i2r[n].abs().sum() > 0
        torch.testing.assert_close(both[n], r2i[n] + i2r[n])


def test_cri_noise_is_drawn_per_branch(model, monkeypatch):
    """The authors call their module once per branch, each call drawing its own noise."""
    draws = []
    relation = model.cri
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
    assert model.cri["r2i"] is not model.cri["i2r"]
    sum(model(batch()).values()).backward()
    for branch in BRANCHES:
        assert model.cri[branch].mean.grad.abs().sum() > 0


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
    y = F.normalize(affinity(x, is_query, GraphSettings()) @ x, dim=1)
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


class CheckCalled(AssertionError):
    """A checking helper ran where inputs are trusted."""


def patch_checks(monkeypatch) -> list[str]:
    """Make every checking helper raise CheckCalled, wherever a cift module holds it: the
    config schema and its checks (cift.config, cift.config_schema), the input checks
    (cift.engine.validate), cift.errors' check_choice and the search settings: each function of
    those modules that is named check_* / require_* or can raise."""
    import importlib
    import inspect
    import sys

    checks = {}
    for name in ("cift.config", "cift.config_schema", "cift.engine.validate", "cift.errors",
                 "cift.search_settings"):
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == name and (
                    attr.startswith(("check", "require")) or "raise " in inspect.getsource(obj)):
                checks[obj] = f"{name}.{attr}"

    def tripwire(qualified):
        def check(*args, **kwargs):
            raise CheckCalled(qualified)
        return check

    for module in [m for n, m in sys.modules.items() if n == "cift" or n.startswith("cift.")]:
        for attr, obj in list(vars(module).items()):
            if inspect.isfunction(obj) and obj in checks:
                monkeypatch.setattr(module, attr, tripwire(checks[obj]))
    return sorted(checks.values())


def cift_calls(run) -> set[str]:
    """The cift functions `run()` calls, directly or not, as "module.function"."""
    import sys

    called = set()

    def profile(frame, event, arg):
        module = frame.f_globals.get("__name__", "")
        if event == "call" and (module == "cift" or module.startswith("cift.")):
            called.add(f"{module}.{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return called


def test_no_check_runs_in_a_training_step_or_the_test_time_transfer(monkeypatch):
    from cift.engine import validate
    from cift.modeling.meta_arch import cift as cift_module

    torch.manual_seed(0)
    model = build_model(cfg("TEST.TRANSFER.MODE", "auto", "TEST.TRANSFER.SPARSE_ABOVE", "40"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    patched = patch_checks(monkeypatch)
    assert {"cift.errors.check_choice", "cift.config.check_value",
            "cift.config_schema.check_rules", "cift.engine.validate.check_topk_batch"
            } <= set(patched)
    with pytest.raises(CheckCalled):  # the tripwires work where the checks are called
        validate.check_topk_batch(validate.Job(cfg()))

    def step_and_transfer():
        model.train()
        optimizer.zero_grad()
        sum(model(batch()).values()).backward()
        optimizer.step()
        model.eval()
        g, q = torch.randn(20, 512), torch.randn(30, 512)
        for n_g in (20, 10):  # 50 nodes: neighbour lists; 40: the chunked form
            model.transfer_test_features(g[:n_g], q, "i2r")
        for form in ("dense", "chunked", "sparse"):
            cift_module.test_time_transfer(g, q, model.graph, form)

    called = cift_calls(step_and_transfer)
    assert "cift.modeling.graph.affinity" in called  # the profile sees the graph functions
    assert not [f for f in called if "check" in f.rsplit(".", 1)[1]], sorted(called)

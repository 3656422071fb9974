"""The authors' backbone (torchvision's ResNet, last stride 1) and its ImageNet weights: read
weights-only from torch hub's cache (a locally generated torchvision-format file here, no
download) or MODEL.BACKBONE.PRETRAIN_PATH; bad files refused in one line naming them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from fastreid.modeling.backbones import build_backbone
from torch import nn

from cift import CiftInputError, load_config
from cift.engine.validate import check_pretrained, validate
from cift.modeling.backbone import (
    TorchvisionResNet,
    imagenet_weights_file,
    load_imagenet_state_dict,
    read_weights_file,
)
from helpers import DEMO, ROOT
from helpers.errors import one_line_error
from helpers.runs import TINY, run_cli
from helpers.unpickling import WritesAFile

SYSU = str(ROOT / "configs/SYSU-MM01/baseline_R50.yml")


def check_recipe_inputs(cfg) -> None:
    """The ImageNet-weights check of a training run (the recipe keys are checked at load)."""
    validate(cfg, checks=[check_pretrained])


def torchvision_last_stride_1(depth: str) -> nn.Module:
    """torchvision's ResNet as the authors build it: every conv of layer4[0] at stride 1."""
    net = {"18x": torchvision.models.resnet18, "50x": torchvision.models.resnet50}[depth]()
    block = net.layer4[0]
    strided = block.conv2 if depth == "50x" else block.conv1
    strided.stride = (1, 1)
    block.downsample[0].stride = (1, 1)
    return net


def pooled(features: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return features(x).mean(dim=(2, 3))


@pytest.fixture()
def hub(tmp_path, monkeypatch) -> Path:
    """TORCH_HOME in a temporary folder: torch.hub.get_dir() is <tmp>/hub."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def save_torchvision_weights(hub: Path, depth: str = "18x", net: nn.Module | None = None
                             ) -> tuple[Path, dict]:
    """A torchvision-format ImageNet file (random weights) where torchvision caches it."""
    url, path = imagenet_weights_file(depth)
    assert Path(path).parent == hub and Path(path).name == url.rsplit("/", 1)[1]
    hub.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    net = net or {"18x": torchvision.models.resnet18, "34x": torchvision.models.resnet34,
                  "50x": torchvision.models.resnet50}[depth]()
    state = net.state_dict()
    torch.save(state, path)
    return Path(path), state


@pytest.mark.parametrize("depth", ["18x", "50x"])
def test_pooled_features_equal_torchvision_with_last_stride_1(depth, tmp_path):
    """Same weights: our backbone's pooled features are torchvision's (the authors'), to 1e-5;
    fastreid's ResNet (stem max-pool padding 0, ceil mode) differs."""
    torch.manual_seed(0)
    reference = torchvision_last_stride_1(depth).eval()
    path = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), path)
    ours = TorchvisionResNet(depth, last_stride=1)
    load_imagenet_state_dict(ours, str(path), depth)
    ours.eval()
    assert ours.maxpool.padding == 1 and not ours.maxpool.ceil_mode
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = pooled(nn.Sequential(*list(reference.children())[:-2]), x)
        got = pooled(ours, x)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        assert ours(x).shape[-2:] == (4, 2)  # stride 16
        cfg = load_config(DEMO, ["MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.NAME",
                                 "build_resnet_backbone", "MODEL.BACKBONE.FEAT_DIM",
                                 "2048" if depth == "50x" else "512"])
        fastreid = build_backbone(cfg)
        fastreid.load_state_dict(reference.state_dict(), strict=False)
        assert (pooled(fastreid.eval(), x) - expected).abs().max() > 1e-3


def test_paper_and_demo_configs_use_it():
    for config in (SYSU, DEMO):
        cfg = load_config(config, ["MODEL.BACKBONE.PRETRAIN", "False"])
        assert cfg.MODEL.BACKBONE.NAME == "build_torchvision_resnet_backbone"
    assert isinstance(build_backbone(load_config(DEMO)), TorchvisionResNet)  # 18x, no weights
    with pytest.raises(CiftInputError, match="WITH_IBN"):
        build_backbone(load_config(DEMO, ["MODEL.BACKBONE.WITH_IBN", "True"]))


def test_imagenet_weights_come_from_the_hub_cache(hub):
    path, state = save_torchvision_weights(hub)
    cfg = load_config(DEMO, ["MODEL.BACKBONE.PRETRAIN", "True"])
    check_recipe_inputs(cfg)
    model = build_backbone(cfg)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)
    assert set(state) - set(loaded) == {"fc.weight", "fc.bias"}


def test_pretrain_path_is_used_when_set(hub, tmp_path):
    path, state = save_torchvision_weights(hub)
    elsewhere = tmp_path / "mine.pth"
    path.rename(elsewhere)
    cfg = load_config(DEMO, ["MODEL.BACKBONE.PRETRAIN", "True",
                             "MODEL.BACKBONE.PRETRAIN_PATH", str(elsewhere)])
    assert torch.equal(build_backbone(cfg).conv1.weight, state["conv1.weight"])
    missing = tmp_path / "absent.pth"
    message = one_line_error(check_recipe_inputs, load_config(DEMO, [
        "MODEL.BACKBONE.PRETRAIN", "True", "MODEL.BACKBONE.PRETRAIN_PATH", str(missing)]))
    assert "MODEL.BACKBONE.PRETRAIN_PATH" in message and str(missing) in message


def test_missing_cache_file_says_where_and_how_without_downloading(hub, tmp_path, env, capsys,
                                                                   monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    url, path = imagenet_weights_file("18x")
    out = tmp_path / "out"
    rc = run_cli("--config-file", DEMO, *TINY, "MODEL.BACKBONE.PRETRAIN", "True",
                 "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert path in err and url in err and "PRETRAIN_PATH" in err
    assert not out.exists()


def test_fastreid_resnet_with_pretrain_is_refused_up_front(tmp_path, env, capsys):
    out = tmp_path / "out"
    rc = run_cli("--config-file", DEMO, *TINY, "MODEL.BACKBONE.NAME", "build_resnet_backbone",
                 "MODEL.BACKBONE.PRETRAIN", "True", "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "build_resnet_backbone" in err and "gdown" in err
    assert not out.exists()


def test_wrong_files_are_refused_naming_them(hub, tmp_path):
    cfg = load_config(DEMO, ["MODEL.BACKBONE.PRETRAIN", "True"])
    path, _ = save_torchvision_weights(hub, "34x")  # another depth under the 18x file name
    Path(imagenet_weights_file("34x")[1]).rename(imagenet_weights_file("18x")[1])
    path = Path(imagenet_weights_file("18x")[1])
    message = one_line_error(check_recipe_inputs, cfg)
    assert str(path) in message and "resnet18" in message and "96 unexpected" in message
    torch.save([torch.ones(2)], path)  # not a dict
    assert "not a state dict" in one_line_error(check_recipe_inputs, cfg)
    torch.save({"model": {"conv1.weight": torch.ones(1)}}, path)  # nested: a training checkpoint
    assert "not a state dict" in one_line_error(check_recipe_inputs, cfg)
    path.write_bytes(b"not a weights file at all")
    message = one_line_error(check_recipe_inputs, cfg)
    assert str(path) in message and "not a readable weights file" in message
    shapes = {k: torch.zeros(1) if k == "conv1.weight" else v
              for k, v in torchvision.models.resnet18().state_dict().items()}
    torch.save(shapes, path)
    message = one_line_error(build_backbone, cfg)
    assert "conv1.weight (1,) in the file, (64, 3, 7, 7) expected" in message


@pytest.mark.parametrize("force_unsafe", [False, True])
def test_malicious_pickle_is_refused_without_running(hub, tmp_path, monkeypatch, force_unsafe):
    """Even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (issue 14.7) nothing from the file runs."""
    if force_unsafe:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "code_ran"
    path, state = save_torchvision_weights(hub)
    torch.save({**state, "payload": WritesAFile(marker)}, path)
    cfg = load_config(DEMO, ["MODEL.BACKBONE.PRETRAIN", "True"])
    for call in (check_recipe_inputs, build_backbone, lambda c: read_weights_file(str(path))):
        message = one_line_error(call, cfg)
        assert str(path) in message and "refused" in message
    explicit = load_config(DEMO, ["MODEL.BACKBONE.PRETRAIN", "True",
                                  "MODEL.BACKBONE.PRETRAIN_PATH", str(path)])
    assert "refused" in one_line_error(build_backbone, explicit)
    assert not marker.exists()


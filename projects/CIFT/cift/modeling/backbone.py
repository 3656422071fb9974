"""The authors' backbone: torchvision's ResNet (stem max-pool padding 1), last stride 1, with
torchvision's ImageNet weights read from torch hub's cache, weights-only, never downloaded.

fastreid's `build_resnet_backbone` differs in its stem (``MaxPool2d(3, 2, padding=0,
ceil_mode=True)`` instead of torchvision's ``padding=1``), so the ImageNet weights, trained
with torchvision's layout, see shifted feature maps; and its weight loading imports gdown
before it looks at its cache and unpickles PRETRAIN_PATH without ``weights_only``.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

import torch
import torchvision
from fastreid.layers import get_norm
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from torch import nn

from ..errors import CiftInputError, name_list

__all__ = ["TorchvisionResNet", "build_torchvision_resnet_backbone", "check_pretrained_weights",
           "imagenet_weights_file", "load_imagenet_state_dict", "pretrained_weights_path"]

NAME = "build_torchvision_resnet_backbone"
# MODEL.BACKBONE.DEPTH -> torchvision architecture.
ARCHITECTURES = {"18x": "resnet18", "34x": "resnet34", "50x": "resnet50", "101x": "resnet101"}
# File names of the same ImageNet weights under older torchvision releases (and fastreid's
# model_urls); found in the hub cache they are used too.
LEGACY_FILES = {"18x": "resnet18-5c106cde.pth", "34x": "resnet34-333f7ec4.pth",
                "50x": "resnet50-19c8e357.pth", "101x": "resnet101-5d3b4d8f.pth"}
# Parameters of torchvision's files that the backbone does not have (the ImageNet classifier).
CLASSIFIER_KEYS = ("fc.weight", "fc.bias")
# Buffers that files saved by old torch releases lack; their default is right for inference.
OPTIONAL_SUFFIX = "num_batches_tracked"
MAX_NAMES = 4


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet without its pooling and classifier: image (B, 3, H, W) -> feature
    map (B, C, H/16, W/16) with last stride 1 (B, C, H/32, W/32 with 2); C = 512 (18x, 34x) or
    2048 (50x, 101x).

    The module names are torchvision's (conv1, bn1, layer1..layer4), so torchvision's ImageNet
    state dict loads as it is. Last stride 1 sets the stride of every convolution of
    ``layer4[0]`` to 1, as the authors do.

    Args:
        depth: "18x", "34x", "50x" or "101x".
        last_stride: 1 or 2.
        norm: fastreid norm name for every BatchNorm2d ("BN", "syncBN", ...).
    """

    def __init__(self, depth: str = "50x", last_stride: int = 1, norm: str = "BN"):
        super().__init__()
        if depth not in ARCHITECTURES:
            raise CiftInputError(f"MODEL.BACKBONE.DEPTH {depth!r}: {NAME} supports "
                                 f"{tuple(ARCHITECTURES)}")
        if last_stride not in (1, 2):
            raise CiftInputError(f"MODEL.BACKBONE.LAST_STRIDE {last_stride!r}: expected 1 or 2")
        net = torchvision.models.get_model(ARCHITECTURES[depth], weights=None,
                                           norm_layer=lambda channels: get_norm(norm, channels))
        if last_stride == 1:
            for module in net.layer4[0].modules():
                if isinstance(module, nn.Conv2d):
                    module.stride = (1, 1)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1, net.layer2, net.layer3, net.layer4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def imagenet_weights_file(depth: str) -> tuple[str, str]:
    """(URL, cache path) of torchvision's ImageNet weights (IMAGENET1K_V1, what
    ``pretrained=True`` loads) for a MODEL.BACKBONE.DEPTH: the file torchvision would download
    to ``torch.hub.get_dir()/checkpoints`` ($TORCH_HOME/hub/checkpoints)."""
    weights = torchvision.models.get_model_weights(ARCHITECTURES[depth]).IMAGENET1K_V1
    directory = os.path.join(torch.hub.get_dir(), "checkpoints")
    return weights.url, os.path.join(directory, os.path.basename(weights.url))


def pretrained_weights_path(cfg) -> str:
    """The ImageNet weights file a config loads: MODEL.BACKBONE.PRETRAIN_PATH when set;
    otherwise torchvision's file in the hub cache (or its legacy name there, when only that
    exists).

    Raises:
        CiftInputError: when that file does not exist, naming it and how to get it.
    """
    b = cfg.MODEL.BACKBONE
    if b.PRETRAIN_PATH:
        if not os.path.isfile(b.PRETRAIN_PATH):
            raise CiftInputError(f"MODEL.BACKBONE.PRETRAIN_PATH {b.PRETRAIN_PATH}: file not found")
        return b.PRETRAIN_PATH
    url, path = imagenet_weights_file(b.DEPTH)
    legacy = os.path.join(os.path.dirname(path), LEGACY_FILES[b.DEPTH])
    for candidate in (path, legacy):
        if os.path.isfile(candidate):
            return candidate
    raise CiftInputError(
        f"MODEL.BACKBONE.PRETRAIN True: ImageNet weights {path} not found (nothing is "
        f"downloaded at run time): fetch {url} to that path (its folder follows $TORCH_HOME), "
        "or set MODEL.BACKBONE.PRETRAIN_PATH to the file")


def read_weights_file(path: str) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} state dict from a .safetensors or .pth file, without running
    code from it: ``torch.load(weights_only=True)`` passed explicitly, which
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD does not override.

    Raises:
        CiftInputError: naming the file, when it is unreadable, holds pickled objects, or is
            not a flat dict of tensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.endswith(".safetensors"):
            content: Any = load_file(path, device="cpu")
        else:
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # an object the weights-only unpickler does not allow (a pickled class or function)
        if "GLOBAL" in str(err):
            raise CiftInputError(f"{path}: refused as ImageNet weights: it holds pickled "
                                 "objects that only arbitrary unpickling can load (which can run "
                                 "code from the file); use torchvision's weights file") from None
        raise CiftInputError(f"{path}: not a readable weights file ({_first_line(err)})") from None
    except (SafetensorError, RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, ImportError) as err:
        raise CiftInputError(f"{path}: not a readable weights file ({_first_line(err)})") from None
    if not (isinstance(content, dict) and content
            and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                    for k, v in content.items())):
        raise CiftInputError(f"{path}: not a state dict (expected a flat {{name: tensor}} "
                             "dict, as torchvision's weights files hold)")
    return content


def load_imagenet_state_dict(model: TorchvisionResNet, path: str, depth: str) -> None:
    """Load torchvision-format ImageNet weights from `path` into `model`.

    Every parameter and buffer of the model must be in the file with its shape (buffers
    named ``num_batches_tracked`` may be absent); the file may hold nothing else but
    torchvision's classifier (fc.*).

    Raises:
        CiftInputError: one line naming the file and the mismatched names.
    """
    state = read_weights_file(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected and k not in CLASSIFIER_KEYS]
    shapes = [f"{k} {tuple(state[k].shape)} in the file, {tuple(v.shape)} expected"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(names)} {what}: {name_list(names, MAX_NAMES)}" for what, names in (
            ("of another shape", shapes), ("missing", missing), ("unexpected", unexpected))
            if names]
        raise CiftInputError(f"{path}: not torchvision {ARCHITECTURES[depth]} weights "
                             f"(MODEL.BACKBONE.DEPTH {depth}): {'; '.join(parts)}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def check_pretrained_weights(cfg) -> None:
    """Up-front check of the ImageNet weights a training config needs: the file exists and
    fits the backbone. fastreid's own ResNet with PRETRAIN True is refused (its loader needs
    gdown and unpickles PRETRAIN_PATH unsafely).

    Raises:
        CiftInputError: one line naming the key or the file.
    """
    b = cfg.MODEL.BACKBONE
    if not b.PRETRAIN:
        return
    if b.NAME == "build_resnet_backbone":
        raise CiftInputError(
            "MODEL.BACKBONE.NAME build_resnet_backbone with PRETRAIN True: fastreid's loader "
            f"downloads with gdown and unpickles PRETRAIN_PATH unsafely; use {NAME} (the same "
            "ImageNet weights, torchvision's stem) or PRETRAIN False")
    if b.NAME == NAME:
        _check_plain(cfg)
        load_imagenet_state_dict(TorchvisionResNet(b.DEPTH, b.LAST_STRIDE, b.NORM),
                                 pretrained_weights_path(cfg), b.DEPTH)


@BACKBONE_REGISTRY.register()
def build_torchvision_resnet_backbone(cfg) -> TorchvisionResNet:
    """MODEL.BACKBONE.{DEPTH, LAST_STRIDE, NORM} -> :class:`TorchvisionResNet`; with PRETRAIN,
    torchvision's ImageNet weights from :func:`pretrained_weights_path`."""
    _check_plain(cfg)
    b = cfg.MODEL.BACKBONE
    model = TorchvisionResNet(b.DEPTH, b.LAST_STRIDE, b.NORM)
    if b.PRETRAIN:
        load_imagenet_state_dict(model, pretrained_weights_path(cfg), b.DEPTH)
    return model


def _check_plain(cfg) -> None:
    """torchvision's ResNets have no IBN, SE or non-local blocks (nor weights for them)."""
    for key in ("WITH_IBN", "WITH_SE", "WITH_NL"):
        if cfg.MODEL.BACKBONE.get(key):
            raise CiftInputError(f"MODEL.BACKBONE.{key} True: {NAME} has no such blocks "
                                 "(use build_resnet_backbone)")


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__

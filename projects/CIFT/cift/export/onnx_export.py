"""ONNX export of the inference feature extractor: backbone + BNNecks, dynamic batch.

The graph takes `images`, (batch, 3, H, W) float32 RGB on the 0-255 scale resized to
INPUT.SIZE_TEST (the model normalises inside, as in PyTorch), and returns `features`: (batch, d)
BNNeck features for VIBaseline, (batch, 2, d) r2i and i2r BNNeck features for CIFT. CIFT's
test-time graph transfer depends on the whole gallery and stays in Python
(`CIFT.transfer_test_features`, or `cift.modeling.transfer.test_time_transfer`).
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from cift.errors import CiftJobError

# Pinned so that an exported file does not change with the torch version's default opset.
OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "features"
# Largest |onnxruntime - torch| accepted on the L2-normalised features (float32, random
# images). Normalised, because ranking is by cosine and trained BNNeck features can reach
# magnitudes of 1e5, where float32 rounding alone exceeds any absolute bound.
PARITY_TOLERANCE = 1e-4


class FeatureExtractor(nn.Module):
    """The model's inference path on an image tensor: (B, 3, H, W) 0..255 -> features."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def output_layout(model: nn.Module) -> str:
    """How to read `features`, stored in the file's metadata."""
    if hasattr(model, "transfer_test_features"):
        return ("(batch, 2, d): BNNeck features of the r2i branch (visible queries) and of "
                "the i2r branch (infrared queries); graph transfer not included")
    return "(batch, d): BNNeck features"


def export_onnx(model: nn.Module, input_size: tuple[int, int], opset: int = OPSET,
                metadata: dict[str, str] | None = None) -> bytes:
    """The model's feature extractor as checked ONNX bytes.

    Args:
        model: a VIBaseline or CIFT (any device; exported from a CPU copy in eval mode).
        input_size: (H, W) of the images (INPUT.SIZE_TEST); the batch axis is dynamic.
        metadata: extra string entries for the file's metadata_props.
    Raises:
        onnx.checker.ValidationError: the exported graph is not valid ONNX.
    """
    import copy

    import onnx

    extractor = FeatureExtractor(copy.deepcopy(model).cpu().eval()).eval()
    example = torch.rand(2, 3, *input_size) * 255.0
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch >= 2.9 warns that the TorchScript-based exporter is legacy; it exports these
        # plain conv/BN/pool graphs without the optional onnxscript dependency of dynamo=True.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            extractor, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    props = {"cift.input": f"{INPUT_NAME}: (batch, 3, {input_size[0]}, {input_size[1]}) "
                           "float32 RGB 0..255 (resized, not normalised)",
             "cift.output": f"{OUTPUT_NAME}: {output_layout(model)}",
             **(metadata or {})}
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def onnx_features(onnx_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """`features` of (B, 3, H, W) float32 images through onnxruntime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: images.astype(np.float32)})[0]


@torch.no_grad()
def onnx_max_abs_diff(model: nn.Module, onnx_bytes: bytes, images: torch.Tensor) -> float:
    """max |onnxruntime features - PyTorch features| on `images` (B, 3, H, W), 0..255."""
    expected = FeatureExtractor(model).eval()(images.to(next(model.parameters()).device))
    got = onnx_features(onnx_bytes, images.cpu().numpy())
    return float(np.abs(got - expected.cpu().numpy()).max())


def normalised_max_abs_diff(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got/|got| - expected/|expected||, each feature vector (last axis, d) scaled to unit
    length: (..., d) arrays of the same shape -> a float, independent of the features' scale."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    return float(np.abs(unit(got) - unit(expected)).max())


class OnnxParityError(CiftJobError):
    """onnxruntime's features differ from PyTorch's beyond the tolerance (a job error: the
    export tool prints it in one line, exits 1 and writes nothing)."""


@torch.no_grad()
def check_parity(model: nn.Module, onnx_bytes: bytes, input_size: tuple[int, int],
                 batch: int = 3, seed: int = 0, tolerance: float = PARITY_TOLERANCE) -> float:
    """Compare onnxruntime with PyTorch on `batch` random images (a batch size other than the
    one traced, so the dynamic axis is exercised), on L2-normalised features (what the
    cosine ranking sees); raise OnnxParityError if they differ by more than `tolerance`.
    Returns that difference."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, *input_size, generator=generator) * 255.0
    expected = FeatureExtractor(model).eval()(images.to(next(model.parameters()).device))
    got = onnx_features(onnx_bytes, images.cpu().numpy())
    diff = normalised_max_abs_diff(got, expected.cpu().numpy())
    if not diff <= tolerance:
        raise OnnxParityError(f"ONNX export differs from PyTorch by {diff:.3g} on normalised "
                              f"features (> {tolerance:g}) on random images")
    return diff

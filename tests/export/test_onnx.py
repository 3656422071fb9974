"""ONNX export of the feature extractor: valid graph (onnx.checker), pinned opset, fixed names,
dynamic batch, and onnxruntime within 1e-4 of PyTorch on random images."""
from __future__ import annotations

import hashlib
import re

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cift.export.onnx_export import (  # noqa: E402
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    PARITY_TOLERANCE,
    export_onnx,
    onnx_features,
    onnx_max_abs_diff,
)
from cift.modeling.graph import GraphSettings  # noqa: E402
from cift.modeling.transfer import test_time_transfer  # noqa: E402
from helpers.exports import export, images, trained_like, write_run  # noqa: E402

SIZE = (32, 16)


@pytest.fixture(scope="module", params=["CIFT", "VIBaseline"])
def exported(request):
    model = trained_like(request.param)
    return request.param, model, export_onnx(model, SIZE)


def test_graph_is_valid_with_pinned_opset_and_fixed_names(exported):
    arch, model, data = exported
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, *SIZE]
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert out_dims[0].dim_param == "batch"
    assert [d.dim_value for d in out_dims[1:]] == ([2, 512] if arch == "CIFT" else [512])
    props = {p.key: p.value for p in proto.metadata_props}
    assert "r2i" in props["cift.output"] if arch == "CIFT" else "r2i" not in props["cift.output"]
    assert "0..255" in props["cift.input"]


@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_pytorch(exported, batch):
    _, model, data = exported
    x = images(batch, seed=batch)
    assert onnx_max_abs_diff(model, data, x) <= PARITY_TOLERANCE
    with torch.no_grad():
        expected = model(x)
    got = torch.from_numpy(onnx_features(data, x.numpy()))
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=PARITY_TOLERANCE, rtol=0)


def test_export_command_writes_a_hashed_onnx_file(tmp_path, capsys):
    model = trained_like("CIFT")
    weights = write_run(tmp_path / "run", model)
    assert export(weights, tmp_path / "zoo", "--onnx") == 0
    (path,) = (tmp_path / "zoo").glob("*.onnx")
    (weights_file,) = (tmp_path / "zoo").glob("*.safetensors")
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert re.fullmatch(r"model_final_[0-9a-f]{8}\.onnx", path.name)
    # the ONNX file carries the hash of the weights it was exported from
    assert path.name == f"model_final_{digest[:8]}.onnx"
    assert path.stem == weights_file.stem
    x = images(4)
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(onnx_features(path.read_bytes(), x.numpy())),
                              model(x), atol=PARITY_TOLERANCE, rtol=0)


def test_export_of_a_cift_model_with_large_features(tmp_path, capsys):
    """Trained BNNeck features can reach ~1e5, where float32 rounding alone exceeds an
    absolute 1e-4: the parity check compares normalised features, and the entry is written."""
    model = trained_like("CIFT")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.mul_(1e5)
        features = model(images(3))
    assert features.abs().max() > 1e4
    assert onnx_max_abs_diff(model, export_onnx(model, SIZE), images(3)) > 1e-4
    weights = write_run(tmp_path / "run", model)
    assert export(weights, tmp_path / "zoo", "--onnx") == 0, capsys.readouterr().err
    (onnx_file,) = (tmp_path / "zoo").glob("*.onnx")
    (weights_file,) = (tmp_path / "zoo").glob("*.safetensors")
    assert onnx_file.stem == weights_file.stem


def test_parity_check_still_refuses_a_real_mismatch():
    from cift.export.onnx_export import OnnxParityError, check_parity

    model = trained_like("VIBaseline")
    data = export_onnx(model, SIZE)
    with torch.no_grad():
        model.heads.neck.weight.mul_(-1)  # the file no longer matches the model
    with pytest.raises(OnnxParityError, match="normalised"):
        check_parity(model, data, SIZE)


@pytest.mark.parametrize("exported", ["CIFT"], indirect=True)
def test_documented_transfer_on_onnx_features_ranks_as_pytorch(exported):
    """docs/model_zoo.md: ONNX features + test_time_transfer in Python == the model."""
    _, model, data = exported
    gallery, queries = images(12, seed=3), images(4, seed=4)
    g = torch.from_numpy(onnx_features(data, gallery.numpy())[:, 1])
    q = torch.from_numpy(onnx_features(data, queries.numpy())[:, 1])
    g, q = test_time_transfer(g, q, GraphSettings("h2ft", tau_hom=0.4, tau_het=0.2, k=4))
    similarity = q @ g.T
    with torch.no_grad():
        g_ref, q_ref = model.transfer_test_features(model(gallery)[:, 1], model(queries)[:, 1],
                                                    "i2r")
    reference = q_ref @ g_ref.T
    assert torch.allclose(similarity, reference, atol=PARITY_TOLERANCE, rtol=0)
    assert torch.equal(similarity.argmax(dim=1), reference.argmax(dim=1))

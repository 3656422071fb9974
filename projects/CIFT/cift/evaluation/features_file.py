"""The saved-features file (docs/features.md): one benchmark's test features with everything the
protocols need, written by the evaluator (TEST.SAVE_FEATURES) or any code base's test loop, and
read back checked by tools/evaluate_features.py.

Fields (N test images, in the order of this project's data set classes: query split, then
gallery split):

- ``format_version`` (int, :data:`FORMAT_VERSION`), ``benchmark`` (a key of
  :data:`BENCHMARKS`), optional ``dataset`` (the registered data set, default the benchmark's)
  and ``split`` (RegDB: 1..10).
- ``feats`` (N, d) float: the features to rank (a CIFT model's: its backbone branch's BNNeck);
  optional ``feats_r2i``, ``feats_i2r`` (N, d): CIFT's graph branches.
- ``pids``, ``camids`` (N,) int; ``modality`` (N,) "visible" / "infrared"; ``paths`` (N,)
  relative to the data set's folder; ``query`` (N,) bool: the protocol's query split. Any other
  (N,) bool field is a mask that ``--query`` / ``--gallery`` may name.
- optional ``settings``: JSON {config key: value} of the run that wrote it (:data:`SETTINGS`).

``.npz`` (read without pickle), ``.pt`` (tensors, strings and numbers only, read with
``weights_only``) and ``.safetensors`` (string fields in the header metadata, JSON-encoded).
Every problem is one CiftInputError line naming the file and the field.
"""
from __future__ import annotations

import json
import math
import pickle
import posixpath
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import CiftInputError, name_list

__all__ = ["BENCHMARKS", "FEATURE_FIELDS", "FORMAT_VERSION", "SETTINGS", "SUFFIXES",
           "SavedFeatures", "features_record", "read_features_file", "recorded_settings",
           "write_features_file"]

FORMAT_VERSION = 1
# benchmark -> (protocol of cift.evaluation.tasks.build_tasks, its registered data set)
BENCHMARKS = {"SYSU-MM01": ("sysu", "SYSUMM01"), "RegDB": ("regdb", "RegDB"),
              "LLCM": ("llcm", "LLCM")}
# Feature arrays: the ranked features, then CIFT's graph branches (cift.branches.BRANCHES).
FEATURE_FIELDS = ("feats", "feats_r2i", "feats_i2r")
REQUIRED = ("format_version", "benchmark", "feats", "pids", "camids", "modality", "paths",
            "query")
MODALITIES = ("visible", "infrared")
SUFFIXES = (".npz", ".pt", ".safetensors")
# Config keys a file records (the evaluation that wrote it) and the tool uses as its defaults.
SETTINGS = ("MODEL.CIFT.GRAPH", "MODEL.CIFT.TAU_HOM", "MODEL.CIFT.TAU_HET", "MODEL.CIFT.TOPK",
            "MODEL.CIFT.PROJECTION", "TEST.CMC_MODE", "TEST.SYSU.TRIALS", "TEST.SYSU.MODES",
            "TEST.SYSU.SHOTS", "TEST.LLCM.TRIALS", "TEST.LLCM.SHOTS", "TEST.LLCM.VIS_TO_IR",
            "TEST.TRANSFER.MODE", "TEST.TRANSFER.SPARSE_ABOVE", "TEST.RERANK.K1",
            "TEST.RERANK.K2", "TEST.RERANK.LAMBDA", "TEST.RETRIEVAL.TOP_R")
# Fields of a .safetensors file kept in its header metadata (JSON-encoded), not as tensors.
_METADATA_FIELDS = ("format_version", "benchmark", "dataset", "split", "settings", "modality",
                    "paths")


@dataclass(frozen=True)
class SavedFeatures:
    """A checked features file."""

    path: str
    benchmark: str
    dataset: str
    split: int | None
    features: dict[str, np.ndarray]  # FEATURE_FIELDS present -> (N, d)
    pids: np.ndarray  # (N,) int64
    camids: np.ndarray  # (N,) int64
    modality: tuple[str, ...]
    paths: tuple[str, ...]
    masks: dict[str, np.ndarray]  # "query" and any other (N,) bool field
    settings: dict[str, Any]

    @property
    def protocol(self) -> str:
        return BENCHMARKS[self.benchmark][0]

    def items(self) -> list[tuple[str, int, int, str]]:
        """(path, pid, camid, modality) of every image, as the data set classes hold them."""
        return list(zip(self.paths, self.pids.tolist(), self.camids.tolist(), self.modality,
                        strict=True))


def recorded_settings(cfg) -> dict[str, Any]:
    """{key: value} of :data:`SETTINGS` in `cfg` (tuples as lists, for JSON)."""
    settings = {}
    for key in SETTINGS:
        node = cfg
        for part in key.split("."):
            node = node[part]
        settings[key] = list(node) if isinstance(node, tuple) else node
    return settings


def features_record(features: dict[str, np.ndarray], items: Sequence[tuple], num_query: int,
                    data_dir: str | Path, benchmark: str, dataset: str,
                    split: int | None = None, settings: dict | None = None
                    ) -> dict[str, np.ndarray]:
    """The fields of a features file (numpy arrays, no Python objects).

    Args:
        features: FEATURE_FIELDS -> (N, d) features ("feats" required).
        items: (absolute image path, pid, camid, modality) of the N test images, queries first.
        num_query: how many of them are the query split.
        data_dir: the data set's folder, which `paths` are made relative to.
        benchmark, dataset, split, settings: as the module docstring says.
    """
    root = Path(data_dir)
    record = {"format_version": np.asarray(FORMAT_VERSION), "benchmark": np.asarray(benchmark),
              "dataset": np.asarray(dataset)}
    if split is not None:
        record["split"] = np.asarray(int(split))
    record.update({name: np.ascontiguousarray(x) for name, x in features.items()})
    record["pids"] = np.asarray([int(it[1]) for it in items], dtype=np.int64)
    record["camids"] = np.asarray([int(it[2]) for it in items], dtype=np.int64)
    record["modality"] = np.asarray([str(it[3]) for it in items])
    record["paths"] = np.asarray([Path(it[0]).relative_to(root).as_posix() for it in items])
    record["query"] = np.arange(len(items)) < num_query
    if settings is not None:
        record["settings"] = np.asarray(json.dumps(settings))
    return record


def write_features_file(path: str | Path, record: dict[str, np.ndarray]) -> None:
    """`record` as an uncompressed .npz, written atomically."""
    atomic_write(str(path), lambda f: np.savez(f, **record))


def read_features_file(path: str | Path) -> SavedFeatures:
    """The checked contents of a .npz, .pt or .safetensors features file.

    Raises:
        CiftInputError: one line naming the file and what is wrong: a missing file, an unknown
            suffix, content that needs unpickling, a missing or malformed field, lengths or
            feature sizes that disagree, a non-finite feature, paths that repeat or leave the
            data set's folder, unknown settings.
    """
    path = Path(path)
    if not path.is_file():
        raise CiftInputError(f"{path}: features file not found")
    readers = {".npz": _read_npz, ".pt": _read_pt, ".safetensors": _read_safetensors}
    if path.suffix not in readers:
        raise CiftInputError(f"{path}: unknown features file type {path.suffix!r}; expected "
                             f"one of {', '.join(SUFFIXES)}")
    return _checked(path, readers[path.suffix](path))


# ---------------------------------------------------------------- readers


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            fields = {}
            for name in npz.files:
                try:
                    fields[name] = npz[name]
                except ValueError as err:  # an object array: needs pickle
                    if "allow_pickle" not in str(err):
                        raise
                    raise CiftInputError(
                        f"{path}: field {name!r} holds Python objects, which would need "
                        "unpickling; store strings as a numpy unicode array "
                        "(np.asarray(list_of_str))") from None
            return fields
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CiftInputError(f"{path}: not a readable .npz file ({_one_line(err)})") from None


def _read_pt(path: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CiftInputError(f"{path}: needs code to unpickle ({_one_line(err)}); a .pt "
                             "features file holds tensors, strings and numbers only") from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise CiftInputError(f"{path}: not a readable .pt file ({_one_line(err)})") from None
    if not isinstance(obj, dict):
        raise CiftInputError(f"{path}: expected a dict of fields, got {type(obj).__name__}")
    fields = {}
    for name, value in obj.items():
        if isinstance(value, torch.Tensor):
            fields[str(name)] = value.numpy()
        elif isinstance(value, (str, int, float, bool)) or (
                isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            fields[str(name)] = np.asarray(value)
        else:
            raise CiftInputError(f"{path}: field {name!r} is a {type(value).__name__}; "
                                 "expected a tensor, a string, a number or a list of strings")
    return fields


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            names = f.keys()
            fields = {name: f.get_tensor(name) for name in names}
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CiftInputError(f"{path}: not a readable .safetensors file "
                             f"({_one_line(err)})") from None
    for name, text in metadata.items():
        if name in _METADATA_FIELDS:
            fields[name] = np.asarray(text if name == "settings" else _json_or_text(text))
    return fields


def _json_or_text(text: str):
    """A metadata value: JSON (numbers, lists of strings), or the text itself (a string)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ---------------------------------------------------------------- checks


def _checked(path: Path, fields: dict[str, np.ndarray]) -> SavedFeatures:
    missing = [name for name in REQUIRED if name not in fields]
    if missing:
        raise CiftInputError(f"{path}: no field {missing[0]!r} (a features file needs "
                             f"{', '.join(REQUIRED)})")
    version = _scalar(path, fields, "format_version", int)
    if version != FORMAT_VERSION:
        raise CiftInputError(f"{path}: format_version {version}: this version reads "
                             f"{FORMAT_VERSION}")
    benchmark = _scalar(path, fields, "benchmark", str)
    if benchmark not in BENCHMARKS:
        raise CiftInputError(f"{path}: benchmark {benchmark!r}: expected one of "
                             f"{', '.join(BENCHMARKS)}")
    dataset = (_scalar(path, fields, "dataset", str) if "dataset" in fields
               else BENCHMARKS[benchmark][1])
    split = _scalar(path, fields, "split", int) if "split" in fields else None
    if benchmark == "RegDB" and (split is None or not 1 <= split <= 10):
        raise CiftInputError(f"{path}: split {split!r}: a RegDB file names its split, 1..10")

    features = _feature_arrays(path, fields)
    n = next(iter(features.values())).shape[0]
    pids = _column(path, fields, "pids", n, "i")
    camids = _column(path, fields, "camids", n, "i")
    modality = _column(path, fields, "modality", n, "U")
    paths = _column(path, fields, "paths", n, "U")
    masks = {name: value for name, value in fields.items()
             if name not in REQUIRED and value.dtype == bool and value.shape == (n,)}
    masks["query"] = _column(path, fields, "query", n, "b")
    unknown = sorted(set(modality.tolist()) - set(MODALITIES))
    if unknown:
        row = modality.tolist().index(unknown[0])
        raise CiftInputError(f"{path}: modality {unknown[0]!r} at row {row} ({paths[row]}): "
                             f"expected 'visible' or 'infrared'")
    _check_paths(path, paths.tolist())
    if (pids < 0).any():
        row = int(np.flatnonzero(pids < 0)[0])
        raise CiftInputError(f"{path}: pid {pids[row]} at row {row} ({paths[row]}): expected "
                             "an identity >= 0")
    return SavedFeatures(str(path), benchmark, dataset, split, features,
                         pids.astype(np.int64), camids.astype(np.int64),
                         tuple(modality.tolist()), tuple(paths.tolist()), masks,
                         _settings(path, fields))


def _scalar(path: Path, fields: dict, name: str, kind: type):
    value = fields[name]
    ok = value.shape == () and (value.dtype.kind in "iu" if kind is int
                                else value.dtype.kind == "U")
    if not ok:
        expected = "an integer" if kind is int else "a string"
        raise CiftInputError(f"{path}: field {name!r} must be {expected}, got "
                             f"{_describe(value)}")
    return kind(value.item())


def _feature_arrays(path: Path, fields: dict) -> dict[str, np.ndarray]:
    features = {name: fields[name] for name in FEATURE_FIELDS if name in fields}
    for name, x in features.items():
        if x.ndim != 2 or x.dtype.kind != "f" or 0 in x.shape:
            raise CiftInputError(f"{path}: field {name!r} must be an (N, d) float array with "
                                 f"N, d >= 1, got {_describe(x)}")
    n, d = features["feats"].shape
    for name, x in features.items():
        if x.shape[0] != n:
            raise CiftInputError(f"{path}: field {name!r} has {x.shape[0]} rows, feats has {n}")
        if x.shape[1] != d:
            raise CiftInputError(f"{path}: feature size d differs: {name!r} has {x.shape[1]} "
                                 f"columns, feats has {d}")
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CiftInputError(f"{path}: field {name!r} row {row} is not finite (NaN or "
                                 f"inf; {int(bad.sum())} such rows)")
    if "feats_r2i" in features and "feats_i2r" not in features or (
            "feats_i2r" in features and "feats_r2i" not in features):
        raise CiftInputError(f"{path}: feats_r2i and feats_i2r come together (CIFT's two "
                             "graph branches)")
    return features


def _column(path: Path, fields: dict, name: str, n: int, kind: str) -> np.ndarray:
    """A per-image field of n entries of dtype kind "i" (integers), "U" (strings), "b" (bool)."""
    value = fields[name]
    kinds = {"i": "iu", "U": "U", "b": "b"}[kind]
    if value.ndim != 1 or value.dtype.kind not in kinds:
        expected = {"i": "integers", "U": "strings", "b": "booleans"}[kind]
        raise CiftInputError(f"{path}: field {name!r} must be a 1-D array of {expected}, got "
                             f"{_describe(value)}")
    if value.shape[0] != n:
        raise CiftInputError(f"{path}: field {name!r} has {value.shape[0]} entries, feats has "
                             f"{n} rows")
    return value


def _check_paths(path: Path, paths: list[str]) -> None:
    seen: dict[str, int] = {}
    for row, relative in enumerate(paths):
        parts = relative.split("/")
        if not relative or posixpath.isabs(relative) or ".." in parts or "\\" in relative:
            raise CiftInputError(f"{path}: paths[{row}] {relative!r}: expected a path relative "
                                 "to the data set's folder, with '/' separators")
        if relative in seen:
            raise CiftInputError(f"{path}: paths[{row}] {relative!r} repeats row {seen[relative]}")
        seen[relative] = row


def _settings(path: Path, fields: dict) -> dict[str, Any]:
    if "settings" not in fields:
        return {}
    text = _scalar(path, fields, "settings", str)
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        raise CiftInputError(f"{path}: settings is not JSON ({err})") from None
    if not isinstance(settings, dict):
        raise CiftInputError(f"{path}: settings must be a JSON object of config keys")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise CiftInputError(f"{path}: settings: unknown key(s) {name_list(unknown, 3)}; "
                             f"known: {', '.join(SETTINGS)}")
    for key, value in settings.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CiftInputError(f"{path}: settings: {key} {value!r}: expected a finite value")
    return settings


def _describe(value: np.ndarray) -> str:
    return f"shape {value.shape} and dtype {value.dtype}"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__

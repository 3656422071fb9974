"""Model-zoo entries: weights only (safetensors), the resolved config, the run's metrics.

An entry is a folder:

    model_final_<sha256[:8]>.safetensors   every parameter and buffer of the model, nothing else
    config.yaml                            the config that rebuilds it (NUM_CLASSES filled in)
    metrics.json                           the run's evaluation, when it belongs to these weights
    model_final_<sha256[:8]>.onnx          optional: the feature extractor (onnx_export.py)

The hashed names carry the first 8 hex digits of the SHA-256 of the safetensors file's bytes:
the ONNX file of an entry carries the same hash as the weights it was exported from.
The entry is written to a temporary folder beside it and renamed into place: complete or
absent.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import secrets
import shutil
import tempfile

import torch

from ..atomic import current_umask, json_bytes, remove_stale_temporaries, temp_prefix
from ..errors import CiftInputError
from ..evaluation.report import RESULTS_FILE
from .safetensors_io import digest_name, sha256_hex, state_dict_to_safetensors

logger = logging.getLogger(__name__)

WEIGHTS_STEM = "model_final"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
ENTRY_PATTERNS = (f"{WEIGHTS_STEM}_*.safetensors", f"{WEIGHTS_STEM}_*.onnx", CONFIG_FILE,
                  METRICS_FILE)


def entry_files(directory: str) -> list[str]:
    """Files of a model-zoo entry already in `directory` (sorted names)."""
    found = set()
    for pattern in ENTRY_PATTERNS:
        found.update(os.path.basename(p) for p in glob.glob(os.path.join(directory, pattern)))
    return sorted(found)


# Keys that cannot change a run's scores: where files go, the device, loader workers, and the
# search backend (the search is exact with either).
UNSCORED_KEYS = ("OUTPUT_DIR", "MODEL.WEIGHTS", "MODEL.DEVICE", "MODEL.BACKBONE.PRETRAIN_PATH",
                 "DATALOADER.NUM_WORKERS", "TEST.SEARCH.BACKEND")


def flat_config(cfg, prefix: str = "") -> dict[str, object]:
    """{"A.B.C": value} for every leaf of a (nested) config."""
    flat: dict[str, object] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def scored_config(cfg) -> dict[str, object]:
    """The config's leaves without UNSCORED_KEYS, NUM_CLASSES left out while unknown (0)."""
    flat = {k: v for k, v in flat_config(cfg).items() if k not in UNSCORED_KEYS}
    if not flat.get("MODEL.HEADS.NUM_CLASSES"):
        flat.pop("MODEL.HEADS.NUM_CLASSES", None)
    return flat


def config_sha256(cfg) -> str:
    """SHA-256 of the config's scored leaves (:func:`scored_config`, NUM_CLASSES included)."""
    flat = {k: v for k, v in flat_config(cfg).items() if k not in UNSCORED_KEYS}
    return sha256_hex(json.dumps(flat, sort_keys=True, default=repr).encode())


def config_differences(cfg, config_file: str) -> list[str] | None:
    """The scored keys on which `config_file` (the config.yaml a run wrote) differs from
    `cfg`, [] when none, None when the file is absent or no longer loads."""
    from ..config import load_config

    if not os.path.isfile(config_file):
        return None
    try:
        other = scored_config(load_config(config_file))
    except CiftInputError:
        return None
    ours = scored_config(cfg)
    missing = object()
    # NUM_CLASSES is absent from a side only where it is still unknown (0): not a difference
    return sorted(k for k in ours.keys() | other.keys()
                  if ours.get(k, missing) != other.get(k, missing)
                  and not (k == "MODEL.HEADS.NUM_CLASSES" and (k not in ours or k not in other)))


def run_metrics(weights: str, cfg=None) -> tuple[dict, str] | None:
    """(results, path) of the evaluation the checkpoint's run left beside it, or None.

    A training run writes `protocol_results.json` at each evaluation (always after its last
    iteration), so it belongs to the checkpoint that `last_checkpoint` names; for any other
    checkpoint of the run (model_0004.pth, model_best.pth) nothing is taken. With `cfg`, the
    run's config.yaml must also agree with it on every scored key (:func:`config_differences`),
    else the results were produced under another config and nothing is taken (logged).
    """
    run_dir = os.path.dirname(os.path.abspath(weights))
    results = os.path.join(run_dir, RESULTS_FILE)
    last = os.path.join(run_dir, "last_checkpoint")
    if not (os.path.isfile(results) and os.path.isfile(last)):
        return None
    with open(last) as f:
        if f.read().strip() != os.path.basename(weights):
            return None
    if cfg is not None:
        differences = config_differences(cfg, os.path.join(run_dir, CONFIG_FILE))
        if differences is None or differences:
            why = ("has no loadable config.yaml" if differences is None else
                   f"was trained under another config ({', '.join(differences[:5])} differ)")
            logger.warning(f"no metrics.json: the run of {weights} {why}")
            return None
    with open(results) as f:
        return json.load(f), results


# Where an entry's config sends the jobs run with it, under `logs/` as fastreid's default:
# never the training run's folder (an --eval-only run writes to OUTPUT_DIR/eval/<weights>).
ENTRY_OUTPUT_ROOT = "logs/zoo"


def resolved_config_yaml(cfg, entry_name: str = "entry") -> str:
    """The config of an entry: as trained, MODEL.WEIGHTS cleared (the weights file sits beside
    it; pass it as MODEL.WEIGHTS), no ImageNet initialisation to fetch, and OUTPUT_DIR
    `logs/zoo/<entry folder name>` instead of the training run's folder."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = f"{ENTRY_OUTPUT_ROOT}/{entry_name}"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.BACKBONE.PRETRAIN_PATH = ""
    cfg.freeze()
    return cfg.dump()


def check_entry_target(output: str, force: bool = False) -> None:
    """`output` can receive an entry: absent, an empty folder, or (with `force`) a folder that
    holds an entry and nothing else; stale temporaries of killed exports beside it are removed.

    Raises:
        CiftInputError: `output` is a file, holds other files, or holds an entry and `force`
            is False.
    """
    if os.path.lexists(output) and not os.path.isdir(output):
        raise CiftInputError(f"--output {output}: is a file; expected a folder for the entry "
                             "(a new or empty one)")
    parent = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(parent):
        remove_stale_temporaries(parent)
    if not os.path.isdir(output):
        return
    existing = entry_files(output)
    other = sorted(set(os.listdir(output)) - set(existing))
    if other:
        raise CiftInputError(f"--output {output}: holds files that are not part of a model-zoo "
                             f"entry ({', '.join(other[:5])}); give a new or empty folder")
    if existing and not force:
        raise CiftInputError(f"{output}: already holds a model-zoo entry "
                             f"({', '.join(existing)}); pass --force to replace it")


def install_folder(tmp: str, output: str) -> None:
    """Rename the complete folder `tmp` to `output`, replacing an existing `output` (empty, or
    an entry). Between the two renames of a replacement `output` is absent, never partial; a
    kill there leaves the old entry under a temporary name that the next export removes."""
    if os.path.isdir(output) and not os.listdir(output):
        os.rmdir(output)
    if not os.path.exists(output):
        os.rename(tmp, output)
        return
    old = os.path.join(os.path.dirname(tmp), f"{temp_prefix()}old{secrets.token_hex(4)}")
    os.rename(output, old)
    os.rename(tmp, output)
    shutil.rmtree(old, ignore_errors=True)


def write_entry(cfg, state: dict, output: str, force: bool = False,
                metrics: tuple | None = None, onnx_bytes: bytes | None = None) -> dict[str, str]:
    """Write a model-zoo entry to `output`: every file into a temporary folder beside it, then
    that folder renamed into place, so the entry is complete or absent, whatever kills the job.

    Args:
        cfg: the resolved config (MODEL.HEADS.NUM_CLASSES filled in).
        state: the model's tensors (a checkpoint's "model" entry, checked against the model
            that `cfg` builds); only they are written, no optimizer, scheduler or counters.
        metrics: (results dict, source path) for metrics.json, or None for no metrics.json;
            its results must have been produced under `cfg` (checked by the caller).
        onnx_bytes: the exported feature extractor, or None.
        force: replace an entry already in `output` (as a whole: no file of it is kept).
    Returns:
        {"weights": path, "config": path, ["metrics": path], ["onnx": path], "sha256": hex}.
    Raises:
        CiftInputError: see `check_entry_target`.
    """
    check_entry_target(output, force)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    tensors = {k: torch.as_tensor(v) for k, v in state.items()}
    weights = state_dict_to_safetensors(tensors)
    digest = sha256_hex(weights)
    files = {"weights": (digest_name(digest, WEIGHTS_STEM, ".safetensors"), weights)}
    if onnx_bytes is not None:
        # named after the weights it was exported from, so the pair is recognisable
        files["onnx"] = (digest_name(digest, WEIGHTS_STEM, ".onnx"), onnx_bytes)
    if metrics is not None:
        results, source = metrics
        # file names only: an entry is shared, the training machine's paths mean nothing there
        files["metrics"] = (METRICS_FILE, json_bytes({
            "weights": files["weights"][0], "sha256": digest,
            "checkpoint": os.path.basename(cfg.MODEL.WEIGHTS),
            "source": os.path.basename(source), "config_sha256": config_sha256(cfg),
            "results": results}))
    files["config"] = (CONFIG_FILE, resolved_config_yaml(
        cfg, os.path.basename(os.path.abspath(output))).encode())
    tmp = tempfile.mkdtemp(prefix=temp_prefix(), dir=parent)
    umask = current_umask()
    try:
        for name, data in files.values():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(os.path.join(tmp, name), 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the usual folder mode
        install_folder(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written = {key: os.path.join(output, name) for key, (name, _) in files.items()}
    written["sha256"] = digest
    return written

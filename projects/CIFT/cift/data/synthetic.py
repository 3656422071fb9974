"""Synthetic visible-infrared person data in the SYSU-MM01 raw layout (the embedded default).

The data set is generated deterministically on first use, so the demo and the tests run the real
SYSU-MM01 loader, sampler, model and protocol without downloading anything::

    <root>/cam{1..6}/{pid:04d}/{n:04d}.jpg       cams 1, 2, 4, 5 visible; cams 3, 6 infrared
    <root>/exp/{train,val,test}_id.txt           one line of comma-separated ids, e.g. "1,2,4"
    <root>/.complete                             the generator's parameters (JSON), written last

Identities differ by body shape (head, torso, legs, arms, bag), clothing pattern (plain, stripes,
checks) and colours. Infrared images are grey (R == G == B): each material's intensity is three
quarters a fixed spectral response to its colour (not its luminance: the same weights for every
identity, so a model can learn the correspondence from the training identities) and a quarter
a hidden per-identity signature that no visible image shows. The colours are lost, the shape
survives and the pattern partly does. Every image adds nuisance (shift, scale, pose,
brightness, noise) and every camera its own background, colour cast or gain, and blur.

Only numpy and Pillow are used; images depend on ``(seed, pid, camera, n)`` alone.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ..progress import progress

__all__ = ["ensure_synthetic_sysu", "generate_synthetic_sysu"]

VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
MARKER = ".complete"
# Bump when the rendering changes, so that a cached data set made by older code is not reused.
GENERATOR_VERSION = 3  # 3: each image's jitter scaled by NUISANCE
JPEG_QUALITY = 95
# Infrared intensity of a material: INFRARED_VISIBLE_SHARE of it is INFRARED_RESPONSE @ its
# visible RGB colour, the rest its identity's hidden signature. The response is not the
# luminance (0.299, 0.587, 0.114): a grey copy of a visible image is not an infrared one.
INFRARED_VISIBLE_SHARE = 0.75
INFRARED_RESPONSE = np.array([0.6, 0.1, 0.3])
# Scale of each image's own jitter (shift, scale, pose, brightness, gain): small enough that a
# ResNet-18 trained from scratch for a few minutes learns the identities, so that what remains
# hard is the modality gap.
NUISANCE = 0.5
VISIBLE_KEY = {"skin": "skin", "hair": "hair", "lower": "lower", "bag": "bag_rgb"}

# Streams of numpy.random.SeedSequence([seed, stream, ...]): each draw depends only on its key.
_SPLIT, _IDENTITY, _CAMERA, _IMAGE = range(4)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def identity_cameras(pid: int) -> tuple[int, ...]:
    """Cameras that see identity ``pid``.

    Like real SYSU-MM01, not every identity passes every camera, but cameras 1, 2 (visible) and
    3 (infrared) see everyone, so every identity can be queried in all-search and indoor-search.
    """
    missing = set()
    if pid % 5 == 0:
        missing.add(4)
    if pid % 7 == 3:
        missing.add(5)
    if pid % 4 == 2:
        missing.add(6)
    return tuple(c for c in (1, 2, 3, 4, 5, 6) if c not in missing)


def identity_attributes(seed: int, pid: int) -> dict[str, Any]:
    """Draw the appearance of identity ``pid``: shape, clothing and hidden infrared signature.

    Lengths are fractions of the image height (vertical) or width (horizontal).
    """
    rng = _rng(seed, _IDENTITY, pid)
    return {
        # shape
        "stature": rng.uniform(0.74, 0.94),  # head top to feet
        "head_r": rng.uniform(0.045, 0.075),
        "torso_len": rng.uniform(0.25, 0.36),  # fraction of stature
        "torso_w": rng.uniform(0.24, 0.42),
        "leg_w": rng.uniform(0.09, 0.17),
        "arm_w": rng.uniform(0.05, 0.10),
        "shorts": bool(rng.random() < 0.3),
        "sleeves": bool(rng.random() < 0.6),  # long sleeves cover the arms
        "bag": int(rng.integers(0, 3)),  # 0 none, 1 left, 2 right
        # clothing, visible only
        "pattern": str(rng.choice(["plain", "hstripes", "vstripes", "checks"])),
        "period": int(rng.integers(3, 8)),
        "upper": rng.uniform(0.0, 1.0, 3),
        "upper2": rng.uniform(0.0, 1.0, 3),
        "lower": rng.uniform(0.0, 1.0, 3),
        "skin": rng.uniform(0.45, 0.9) * np.array([1.0, 0.8, 0.65]),
        "hair": rng.uniform(0.05, 0.5, 3),
        "bag_rgb": rng.uniform(0.0, 1.0, 3),
        # hidden signature: the part of each material's infrared intensity that its visible
        # colour does not predict (_infrared_level)
        "t_skin": rng.uniform(0.7, 0.95),
        "t_upper": rng.uniform(0.2, 0.9),
        "t_lower": rng.uniform(0.2, 0.9),
        "t_hair": rng.uniform(0.2, 0.6),
        "t_pattern": rng.uniform(-0.15, 0.15),
        "t_bag": rng.uniform(0.1, 0.5),
    }


def camera_attributes(seed: int, cam: int, height: int, width: int) -> dict[str, Any]:
    """Draw the look of camera ``cam``: background scene, colour cast or gain, and blur."""
    rng = _rng(seed, _CAMERA, cam)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    floor = rows > rng.uniform(0.7, 0.9)
    if cam in INFRARED_CAMERAS:
        wall, ground = rng.uniform(0.05, 0.25, 2)
        background = np.where(floor, ground, wall + rng.uniform(-0.08, 0.08) * rows)
        return {"background": np.broadcast_to(background, (height, width, 1)),
                "gain": rng.uniform(0.85, 1.1), "blur": rng.uniform(0.3, 0.9)}
    # a wall fading to another tint, then the floor: muted colours, like most real scenes
    top, bottom, ground = rng.uniform(0.3, 0.7, (3, 1)) + rng.uniform(-0.1, 0.1, (3, 3))
    background = np.where(floor, ground, top + (bottom - top) * rows)
    return {"background": np.broadcast_to(background, (height, width, 3)),
            "cast": rng.uniform(0.85, 1.15, 3), "blur": rng.uniform(0.0, 0.8)}


def _body_layers(attrs: dict[str, Any], rng: np.random.Generator, height: int, width: int
                 ) -> list[tuple[np.ndarray, str]]:
    """Per-image silhouette: (mask, part) pairs, painted in order, with shift/scale/pose jitter.

    Part names: ``skin``, ``hair``, ``upper`` (torso and sleeves), ``lower``, ``bag``.
    Returns boolean masks of shape (height, width).
    """
    scale = 1 + NUISANCE * rng.uniform(-0.1, 0.08)
    dx = NUISANCE * rng.uniform(-0.08, 0.08) * width
    stride = NUISANCE * rng.uniform(-0.12, 0.12) * width  # legs apart (pose)
    swing = NUISANCE * rng.uniform(-0.06, 0.06) * width  # arms forwards/backwards (pose)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    stature = attrs["stature"] * height * scale
    top = (height - stature) / 2 + NUISANCE * rng.uniform(-0.04, 0.04) * height
    cx = width / 2 + dx
    # body coordinates: v from head top (pixels), u from the body centre line (pixels)
    v, u = y - top, x - cx
    hr = attrs["head_r"] * height * scale
    neck = 2 * hr
    hip = neck + attrs["torso_len"] * stature
    feet = stature
    tw = attrs["torso_w"] * width * scale / 2
    lw = attrs["leg_w"] * width * scale
    aw = attrs["arm_w"] * width * scale

    head = (u / (0.8 * hr)) ** 2 + ((v - hr) / hr) ** 2 <= 1.0
    hair = head & (v < 0.7 * hr)
    torso = (np.abs(u) <= tw) & (v >= neck) & (v < hip)
    # legs slant from the hip by +-stride at the feet
    t = np.clip((v - hip) / max(feet - hip, 1.0), 0.0, 1.0)
    gap = 0.35 * tw
    in_legs = (v >= hip) & (v < feet)
    legs = in_legs & ((np.abs(u - (-gap - stride * t / 2)) <= lw / 2)
                      | (np.abs(u - (gap + stride * t / 2)) <= lw / 2))
    lower_legs = legs & (v >= hip + 0.45 * (feet - hip))
    arm_len = 0.9 * (hip - neck) + 0.1 * (feet - hip)
    ta = np.clip((v - neck) / max(arm_len, 1.0), 0.0, 1.0)
    in_arms = (v >= neck) & (v < neck + arm_len)
    arms = in_arms & ((np.abs(u - (-tw - aw / 2 - swing * ta)) <= aw / 2)
                      | (np.abs(u - (tw + aw / 2 + swing * ta)) <= aw / 2))

    layers = [(arms, "upper" if attrs["sleeves"] else "skin"),
              (legs, "lower")]
    if attrs["shorts"]:
        layers.append((lower_legs, "skin"))
    layers += [(torso, "upper"), (head, "skin"), (hair, "hair")]
    if attrs["bag"]:
        side = -1.0 if attrs["bag"] == 1 else 1.0
        bu = side * (tw + aw)
        bag = ((np.abs(u - bu) <= 0.7 * tw) & (v >= hip - 0.15 * stature)
               & (v < hip + 0.05 * stature))
        layers.append((bag, "bag"))
    return layers


def _pattern(attrs: dict[str, Any], height: int, width: int, rng: np.random.Generator
             ) -> np.ndarray:
    """Clothing pattern of the upper garment: float array (height, width) in {0, 1}."""
    y, x = np.mgrid[0:height, 0:width]
    p = attrs["period"]
    oy, ox = rng.integers(0, p, 2)  # the garment moves with the body
    rows, cols = ((y + oy) // p) % 2, ((x + ox) // p) % 2
    kind = attrs["pattern"]
    if kind == "hstripes":
        return rows.astype(np.float64)
    if kind == "vstripes":
        return cols.astype(np.float64)
    if kind == "checks":
        return (rows ^ cols).astype(np.float64)
    return np.zeros((height, width))


def render_visible(attrs: dict[str, Any], camera: dict[str, Any], rng: np.random.Generator,
                   height: int, width: int) -> np.ndarray:
    """Render one visible image: uint8 array (height, width, 3)."""
    img = np.array(camera["background"], dtype=np.float64)
    img = img + rng.normal(0.0, 0.04, (1, 1, 3)) + rng.normal(0.0, 0.03, img.shape)
    pattern = _pattern(attrs, height, width, rng)[..., None]
    for mask, part in _body_layers(attrs, rng, height, width):
        if part == "upper":
            paint = attrs["upper"] * (1 - pattern) + attrs["upper2"] * pattern
            img[mask] = paint[mask]
        else:
            img[mask] = attrs[VISIBLE_KEY[part]]
    img = img * camera["cast"] * (1 + NUISANCE * rng.uniform(-0.2, 0.2))  # cast, brightness
    img = img + rng.normal(0.0, 0.02, img.shape)
    return _finish(img, camera["blur"])


def _infrared_level(rgb: np.ndarray, hidden: float | np.ndarray) -> np.ndarray:
    """Infrared intensity of a material: mostly the fixed spectral response to its visible
    colour, partly its identity's hidden signature.

    Args:
        rgb: (..., 3) visible colour in [0, 1].
        hidden: the identity's hidden signature, broadcastable to ``rgb[..., 0]``.

    Returns:
        (...,) ``s * rgb @ INFRARED_RESPONSE + (1 - s) * hidden``, s = INFRARED_VISIBLE_SHARE.
    """
    response = rgb @ INFRARED_RESPONSE
    return INFRARED_VISIBLE_SHARE * response + (1 - INFRARED_VISIBLE_SHARE) * hidden


def render_infrared(attrs: dict[str, Any], camera: dict[str, Any], rng: np.random.Generator,
                    height: int, width: int) -> np.ndarray:
    """Render one infrared image: uint8 array (height, width, 3) with R == G == B."""
    img = np.array(camera["background"][..., 0], dtype=np.float64)
    img = img + rng.normal(0.0, 0.03) + rng.normal(0.0, 0.03, img.shape)
    pattern = _pattern(attrs, height, width, rng)
    for mask, part in _body_layers(attrs, rng, height, width):
        if part == "upper":
            rgb = attrs["upper"] * (1 - pattern[..., None]) + attrs["upper2"] * pattern[..., None]
            hidden = attrs["t_upper"] + attrs["t_pattern"] * pattern
            img[mask] = _infrared_level(rgb, hidden)[mask]
        else:
            img[mask] = _infrared_level(attrs[VISIBLE_KEY[part]], attrs[f"t_{part}"])
    img = img * camera["gain"] * (1 + NUISANCE * rng.uniform(-0.15, 0.15))
    img = img + rng.normal(0.0, 0.025, img.shape)
    return _finish(np.repeat(img[..., None], 3, axis=2), camera["blur"])


def _finish(img: np.ndarray, blur: float) -> np.ndarray:
    """Clip a float image in [0, 1] to uint8 and apply the camera's blur."""
    out = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    if blur > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(out)


def _write_jpeg(path: pathlib.Path, img: np.ndarray) -> None:
    # Fixed quality and subsampling, no optimize/progressive: byte-identical output across runs.
    Image.fromarray(img, "RGB").save(path, "JPEG", quality=JPEG_QUALITY, subsampling=0)


def split_ids(seed: int, num_ids: int, test_ids: int, val_ids: int
              ) -> tuple[list[int], list[int], list[int]]:
    """Split ids 1..num_ids into sorted (train, val, test) lists, scattered like SYSU-MM01's."""
    if test_ids < 1 or val_ids < 0 or test_ids + val_ids >= num_ids:
        raise ValueError(f"need 1 <= test_ids, 0 <= val_ids and test_ids + val_ids < num_ids; "
                         f"got num_ids={num_ids}, test_ids={test_ids}, val_ids={val_ids}")
    order = _rng(seed, _SPLIT).permutation(np.arange(1, num_ids + 1)).tolist()
    test, val = order[:test_ids], order[test_ids:test_ids + val_ids]
    return sorted(order[test_ids + val_ids:]), sorted(val), sorted(test)


def _write_layout(out: pathlib.Path, params: dict[str, Any]) -> None:
    """Write every image, the id files and, last, the marker into the empty folder ``out``."""
    seed, height, width = params["seed"], params["height"], params["width"]
    cameras = {c: camera_attributes(seed, c, height, width) for c in (1, 2, 3, 4, 5, 6)}
    pids = range(1, params["num_ids"] + 1)
    name = out.name.split(".tmp-")[0]  # built in a temporary sibling of the final folder
    for pid in progress(pids, desc=f"{name}: generating", unit="id", leave=True):
        attrs = identity_attributes(seed, pid)
        for cam in identity_cameras(pid):
            folder = out / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            render = render_infrared if cam in INFRARED_CAMERAS else render_visible
            for n in range(1, params["images_per_camera"] + 1):
                img = render(attrs, cameras[cam], _rng(seed, _IMAGE, pid, cam, n), height, width)
                _write_jpeg(folder / f"{n:04d}.jpg", img)
    exp = out / "exp"
    exp.mkdir()
    splits = split_ids(seed, params["num_ids"], params["test_ids"], params["val_ids"])
    for name, ids in zip(("train", "val", "test"), splits, strict=True):
        (exp / f"{name}_id.txt").write_text(",".join(map(str, ids)) + "\n")
    (out / MARKER).write_text(json.dumps(params, sort_keys=True, indent=1) + "\n")


def _read_marker(root: pathlib.Path) -> dict[str, Any] | None:
    marker = root / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def _check_existing(root: pathlib.Path, params: dict[str, Any]) -> bool:
    """True when ``root`` holds a complete data set made with ``params``; raise if it is foreign."""
    if not root.exists():
        return False
    found = _read_marker(root)
    if found is None:
        raise FileExistsError(f"{root} exists but is not a complete synthetic data set "
                              f"(no {MARKER}); remove it or choose another folder")
    diff = {k: (found.get(k), v) for k, v in params.items() if found.get(k) != v}
    if diff:
        listed = ", ".join(f"{k}={old!r} (asked {new!r})" for k, (old, new) in sorted(diff.items()))
        raise FileExistsError(f"{root} holds a synthetic data set made with other parameters: "
                              f"{listed}; remove it or choose another folder")
    return True


def generate_synthetic_sysu(root: str | os.PathLike, num_ids: int = 60,
                            images_per_camera: int = 6, height: int = 96, width: int = 48,
                            seed: int = 0, test_ids: int = 20, val_ids: int = 8) -> pathlib.Path:
    """Write a deterministic synthetic VI-ReID data set in the SYSU-MM01 raw layout into ``root``.

    ``root`` is the data-set folder itself (e.g. ``<datasets>/SyntheticVI``). The data set is
    built in a sibling ``<root>.tmp-<pid>`` and moved into place only when complete, so an
    interrupted run never leaves a half-written ``root``. If ``root`` already holds a complete data
    set made with the same parameters, it is returned as is.

    Args:
        root: the data-set folder to create.
        num_ids: identities, numbered 1..num_ids.
        images_per_camera: images per (identity, camera) pair the camera sees.
        height, width: image size in pixels.
        seed: the same seed and parameters give byte-identical files.
        test_ids, val_ids: identities in ``exp/test_id.txt`` and ``exp/val_id.txt``; the rest
            are in ``exp/train_id.txt``.

    Returns:
        ``root`` as a :class:`pathlib.Path`.

    Raises:
        FileExistsError: ``root`` exists without the completion marker, or was made with other
            parameters.
        ValueError: impossible parameters.
    """
    root = pathlib.Path(root)
    params = {"version": GENERATOR_VERSION, "num_ids": int(num_ids),
              "images_per_camera": int(images_per_camera), "height": int(height),
              "width": int(width), "seed": int(seed), "test_ids": int(test_ids),
              "val_ids": int(val_ids)}
    if num_ids < 2 or images_per_camera < 1 or height < 16 or width < 8 or seed < 0:
        raise ValueError("need num_ids >= 2, images_per_camera >= 1, height >= 16, width >= 8, "
                         f"seed >= 0; got {params}")
    split_ids(seed, num_ids, test_ids, val_ids)  # validates the split before any work
    if _check_existing(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run whose pid we now reuse
    try:
        tmp.mkdir()
        _write_layout(tmp, params)
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process (e.g. another rank) finished first: use its copy if it matches.
            if not _check_existing(root, params):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_synthetic_sysu(root: str | os.PathLike, **kwargs: Any) -> pathlib.Path:
    """Return ``root``, generating it first if absent (arguments of generate_synthetic_sysu).

    Raises:
        FileExistsError: ``root`` exists without the completion marker, or its marker records
            other parameters (the message names them).
        TypeError: an unknown keyword argument.
    """
    return generate_synthetic_sysu(root, **kwargs)

"""Per-trial gallery draws of SYSU-MM01 and LLCM: which images of one modality a trial uses.

Pure stdlib. The draws reproduce the public reference code's single-shot random draws:
``process_gallery_sysu`` of Ye et al. (https://github.com/mangye16/Cross-Modal-Re-ID-baseline,
also used by AGW and DEEN) and ``process_gallery_llcm`` of Zhang and Wang
(https://github.com/ZYK100/LLCM); the metrics that score a draw are in
:mod:`cift.evaluation.metrics`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

__all__ = ["LLCM_CAMERAS", "SYSU_CAMERAS", "SYSU_QUERY_CAMERAS", "sample_llcm_gallery",
           "sample_sysu_gallery"]

# Visible (gallery) cameras per search mode; infrared query cameras.
SYSU_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
SYSU_QUERY_CAMERAS = (3, 6)
# LLCM cameras read per modality: the same nine cameras film in visible light and near infrared
# (camera k is one camera in both), but the reference reads no infrared camera 3.
LLCM_CAMERAS = {"visible": (1, 2, 3, 4, 5, 6, 7, 8, 9), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)}


def sample_sysu_gallery(
    pool: Sequence[tuple], mode: str = "all", trial: int = 0, shots: int = 1
) -> list[int]:
    """Draw the SYSU-MM01 gallery of one trial from the visible test images.

    Identities in ascending order, then the mode's cameras in order; for each (identity, camera)
    with images, ``shots`` images of its path-sorted list are drawn with ``random.Random(trial)``:
    ``choice`` when ``shots == 1`` (the reference's single-shot draw), ``sample`` otherwise.

    Args:
        pool: items ``(img_path, pid, camid, ...)`` in any order; items of other cameras are
            ignored.
        mode: "all" (cameras 1, 2, 4, 5) or "indoor" (cameras 1, 2).
        trial: seed of the draw.
        shots: images per (identity, camera): 1 single-shot, 10 multi-shot.

    Returns:
        Indices into ``pool`` of the drawn images, in draw order.

    Raises:
        ValueError: on an unknown mode, ``shots < 1``, or an (identity, camera) with fewer than
            ``shots`` images.
        TypeError: when ``trial`` or ``shots`` is not an int.
    """
    if mode not in SYSU_CAMERAS:
        raise ValueError(f"unknown SYSU-MM01 mode {mode!r}; known: {', '.join(SYSU_CAMERAS)}")
    return _draw(pool, SYSU_CAMERAS[mode], trial, shots)


def sample_llcm_gallery(pool: Sequence[tuple], trial: int = 0, shots: int = 1) -> list[int]:
    """Draw the per-trial image set of one LLCM modality, as the reference's
    ``process_gallery_llcm``.

    Identities in ascending order, then the modality's cameras in order (``LLCM_CAMERAS``:
    visible 1-9, infrared 1, 2, 4-9); for each (identity, camera) with images, ``shots`` images
    of its path-sorted list are drawn with ``random.Random(trial)``: ``choice`` when
    ``shots == 1`` (the reference, which is single-shot only), ``sample`` otherwise (our
    extension, as :func:`sample_sysu_gallery`).

    The reference test script (``test_mode`` in DEEN's and AGW's ``test.py``) draws from one
    modality and keeps every image of the other, over trials 0-9:

    - ``test_mode = [1, 2]``, labelled "IR to VIS" (the default): queries = every infrared test
      image; gallery = this draw from the visible test images. Infrared queries, visible gallery.
    - ``test_mode = [2, 1]``, labelled "VIS to IR": the draw is from the *infrared* test images
      and every visible test image is kept, but the script then transposes the distance matrix
      and swaps the label and camera arguments of ``eval_llcm``: the drawn infrared images are
      the ranked **queries** and every visible test image is the **gallery**. So the published
      "VIS to IR" numbers also rank visible images for infrared queries; what changes per trial
      there is the query set, not the gallery. To reproduce them, pass the infrared draw as the
      queries of :func:`cift.evaluation.metrics.evaluate_llcm` and all visible test images as
      its gallery.

    Args:
        pool: items ``(img_path, pid, camid, modality, ...)`` of one modality ("visible" or
            "infrared"), in any order; items of cameras the modality does not list are ignored.
        trial: seed of the draw.
        shots: images per (identity, camera); the reference draws 1.

    Returns:
        Indices into ``pool`` of the drawn images, in draw order.

    Raises:
        ValueError: when the pool mixes modalities or has an unknown one, on ``shots < 1``, or
            an (identity, camera) with fewer than ``shots`` images.
        TypeError: when ``trial`` or ``shots`` is not an int.
    """
    modalities = {item[3] if len(item) > 3 else None for item in pool}
    if len(modalities) > 1 or not modalities <= set(LLCM_CAMERAS):
        found = ", ".join(sorted(map(repr, modalities)))
        raise ValueError(f"LLCM pool items need one modality, 'visible' or 'infrared'; "
                         f"found {found}")
    cameras = LLCM_CAMERAS[modalities.pop()] if modalities else ()
    return _draw(pool, cameras, trial, shots)


def _draw(pool: Sequence[tuple], cameras: tuple[int, ...], trial: int, shots: int) -> list[int]:
    """Indices into ``pool`` of ``shots`` images per (identity, camera of ``cameras``), drawn
    identity-major, camera-minor from path-sorted lists with ``random.Random(trial)``."""
    for name, value in (("trial", trial), ("shots", shots)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    folders = defaultdict(list)
    for index, (img_path, pid, camid, *_) in enumerate(pool):
        if int(camid) in cameras:
            folders[int(pid), int(camid)].append((str(img_path), index))

    # A private generator: same draws as the reference's random.seed(trial), global state kept.
    rng = random.Random(trial)
    drawn = []
    for pid in sorted({pid for pid, _ in folders}):
        for cam in cameras:
            files = sorted(folders.get((pid, cam), ()))
            if not files:
                continue
            if shots == 1:
                drawn.append(rng.choice(files)[1])
                continue
            # The reference has no multi-shot draw; forks use an unseeded np.random.choice without
            # replacement, which no trial reproduces. Same seeded generator here, same failure.
            if len(files) < shots:
                raise ValueError(f"identity {pid} camera {cam} has {len(files)} images, "
                                 f"fewer than shots={shots}")
            drawn.extend(index for _, index in rng.sample(files, shots))
    return drawn

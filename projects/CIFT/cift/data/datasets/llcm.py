"""LLCM read in place from the layout its authors distribute."""
from __future__ import annotations

import os
import re
from pathlib import Path

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from ...errors import CiftInputError
from ..modality import INFRARED, VISIBLE
from .common import NoConfigOptions, require_dataset_folder
from .regdb import read_index_file
from .sysu_mm01 import IMAGE_SUFFIXES, read_id_file

# Test folders and the cameras the reference code reads in them: the same nine cameras film in
# both modalities, but it reads no near-infrared camera 3 (such a folder is ignored here too).
TEST_FOLDERS = {VISIBLE: "test_vis", INFRARED: "test_nir"}
TEST_CAMERAS = {VISIBLE: (1, 2, 3, 4, 5, 6, 7, 8, 9), INFRARED: (1, 2, 4, 5, 6, 7, 8, 9)}
TRAIN_LISTS = {VISIBLE: "train_vis.txt", INFRARED: "train_nir.txt"}
# A training image's camera: its `cam<k>` folder, else the `_c<k>` of its file name.
_CAMERA_FOLDER = re.compile(r"cam(\d+)")
_CAMERA_IN_NAME = re.compile(r"_c(\d+)")


def camera_of(path: Path) -> int | None:
    """Camera number of an LLCM image path relative to the LLCM folder, or None when the path
    shows none."""
    for part in reversed(path.parent.parts):
        match = _CAMERA_FOLDER.fullmatch(part)
        if match:
            return int(match.group(1))
    match = _CAMERA_IN_NAME.search(path.name)
    return int(match.group(1)) if match else None


@DATASET_REGISTRY.register()
class LLCM(NoConfigOptions, ImageDataset):
    """LLCM, the low-light cross-modality benchmark (Zhang and Wang, "Diverse Embedding
    Expansion Network and Low-Light Cross-Modality Benchmark for Visible-Infrared Person
    Re-identification", CVPR 2023).

    URL: https://github.com/ZYK100/LLCM (download on request from the authors).
    Layout under `$FASTREID_DATASETS/LLCM`: `idx/train_vis.txt` and `idx/train_nir.txt`
    (`relative/path label` lines, paths relative to the LLCM folder), `idx/test_id.txt`
    (comma-separated test ids), `test_vis/cam{1..9}/{pid:04d}/*.jpg` and
    `test_nir/cam{1,2,4..9}/{pid:04d}/*.jpg`.

    46,767 images of 1,064 identities from nine cameras that film in visible light or near
    infrared (camera k is the same camera in `test_vis/` and `test_nir/`, so camids of the two
    modalities compare): 713 train identities (the class count of the authors' code) and 351
    test identities. The authors later revised the data set and their published results, so
    numbers from before and after the revision differ.

    Splits: train = every line of both train lists (pids prefixed "llcm_", labels shared by the
    two modalities); query = every visible test image, gallery = every near-infrared test image,
    in the reference's order (ids ascending, then cameras, then file names); the evaluator draws
    the per-trial sets from them (`cift.evaluation.protocols.sample_llcm_gallery`). Items are
    (img_path, pid, camid, modality); a training camid comes from the image's `cam<k>` folder,
    else from the `_c<k>` of its file name.
    """

    dataset_dir = "LLCM"
    dataset_name = "llcm"
    protocol = "llcm"  # evaluation tasks: cift.evaluation.tasks.build_tasks

    def __init__(self, root: str = "datasets", **kwargs):
        self.root = Path(root)
        self.data_dir = require_dataset_folder(self.root / self.dataset_dir)
        train = self._read_train(VISIBLE) + self._read_train(INFRARED)
        test_ids = sorted(set(read_id_file(self.data_dir / "idx" / "test_id.txt")))
        query = self._list_test(VISIBLE, test_ids)
        gallery = self._list_test(INFRARED, test_ids)
        listed = {pid for _, pid, _, _ in query + gallery}
        missing = [pid for pid in test_ids if pid not in listed]
        if missing:
            raise CiftInputError(f"{self.data_dir}: identity {missing[0]} is listed in "
                                 f"idx/test_id.txt but has no image folder "
                                 f"test_{{vis,nir}}/cam*/{missing[0]:04d}")
        super().__init__(train, query, gallery, **kwargs)

    def _read_train(self, modality: str) -> list[tuple[str, str, int, str]]:
        index = self.data_dir / "idx" / TRAIN_LISTS[modality]
        items = []
        for path, label in read_index_file(index, self.data_dir):
            camid = camera_of(Path(path).relative_to(self.data_dir))
            if camid is None:
                raise CiftInputError(f"{index}: no camera in image path {path} (expected a "
                                     f"cam<k> folder or _c<k> in the file name)")
            items.append((path, f"{self.dataset_name}_{label}", camid, modality))
        return items

    def _list_test(self, modality: str, pids: list[int]) -> list[tuple[str, int, int, str]]:
        folder = self.data_dir / TEST_FOLDERS[modality]
        if not folder.is_dir():
            raise CiftInputError(f"{folder}: test folder not found (expected "
                                 f"{TEST_FOLDERS[modality]}/cam<k>/<pid:04d>/)")
        items = []
        for pid in pids:
            for cam in TEST_CAMERAS[modality]:
                images = folder / f"cam{cam}" / f"{pid:04d}"
                if not images.is_dir():
                    continue
                for name in sorted(os.listdir(images)):
                    if name.lower().endswith(IMAGE_SUFFIXES):
                        items.append((str(images / name), pid, cam, modality))
        return items

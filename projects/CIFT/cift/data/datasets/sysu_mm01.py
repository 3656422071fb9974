"""SYSU-MM01 read in place from its raw download layout."""
from __future__ import annotations

import os
from pathlib import Path

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from ...errors import CiftInputError, name_list
from ..modality import INFRARED, VISIBLE
from .common import NoConfigOptions, read_text, require_dataset_folder

VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# identities named in one-line errors
SHOWN_IDS = 5


def read_id_file(path: Path) -> list[int]:
    """Parse one `exp/*_id.txt` file: comma-separated integer identities (whitespace allowed)."""
    if not path.is_file():
        raise CiftInputError(f"{path}: split file not found (expected comma-separated ids)")
    text = read_text(path, "comma-separated integer ids")
    tokens = [t for t in text.replace("\n", ",").split(",") if t.strip()]
    try:
        return [int(t) for t in tokens]
    except ValueError as err:
        raise CiftInputError(f"{path}: expected comma-separated integer ids ({err})") from None


def list_identity_images(root: Path, pids: list[int], cameras: tuple[int, ...]
                         ) -> list[tuple[str, int, int, str]]:
    """All images of `pids` under `root/cam{c}/{pid:04d}/`, as (path, pid, camid, modality).

    Files are sorted by name within a folder. Every pid must have at least one image in these
    cameras: a listed identity whose folders are missing or hold no image means an incomplete
    copy, and is refused (all such identities named in one line).
    """
    items, without = [], []
    for pid in pids:
        count = len(items)
        for cam in cameras:
            folder = root / f"cam{cam}" / f"{pid:04d}"
            if not folder.is_dir():
                continue
            modality = INFRARED if cam in INFRARED_CAMERAS else VISIBLE
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(IMAGE_SUFFIXES):
                    items.append((str(folder / name), pid, cam, modality))
        if len(items) == count:
            without.append(pid)
    if without:
        cams = ",".join(str(c) for c in cameras)
        ids = name_list([f"{pid:04d}" for pid in without], SHOWN_IDS)
        raise CiftInputError(f"{root}: {len(without)} identities listed in exp/ have no image "
                             f"in cam{{{cams}}}/<id>/ (folder missing or empty): {ids}")
    return items


def check_disjoint_ids(exp: Path, train_ids: list[int], test_ids: list[int]) -> None:
    """Train (train ∪ val) and test identities must not overlap: a test identity seen in
    training inflates every score. One line naming the shared ids."""
    shared = sorted(set(train_ids) & set(test_ids))
    if shared:
        ids = name_list([str(pid) for pid in shared], SHOWN_IDS)  # as the files spell them
        raise CiftInputError(f"{exp}: {len(shared)} identities are listed both for training "
                             f"(train_id.txt, val_id.txt) and for testing (test_id.txt): {ids}")


@DATASET_REGISTRY.register()
class SYSUMM01(NoConfigOptions, ImageDataset):
    """SYSU-MM01 (Wu et al., "RGB-Infrared Cross-Modality Person Re-Identification", ICCV 2017).

    URL: https://github.com/wuancong/SYSU-MM01 (download on request from the authors).
    Layout under `$FASTREID_DATASETS/SYSU-MM01`: `cam{1..6}/{pid:04d}/*.jpg` and
    `exp/{train,val,test}_id.txt`. Cameras 1, 2, 4, 5 are visible, 3 and 6 near-infrared.

    Splits (the standard protocol): train = train ∪ val ids (395 ids, 22,258 visible +
    11,909 infrared images); query = every infrared image of the 96 test ids (3,803);
    gallery pool = every visible image of the test ids (cams 1, 2, 4, 5), from which the
    evaluator draws the per-trial galleries. Items are (img_path, pid, camid, modality).
    """

    dataset_dir = "SYSU-MM01"
    dataset_name = "sysumm01"
    protocol = "sysu"  # evaluation tasks: cift.evaluation.tasks.build_tasks

    def __init__(self, root: str = "datasets", **kwargs):
        self.root = Path(root)
        self.data_dir = self.prepare(self.root / self.dataset_dir)
        exp = self.data_dir / "exp"
        if not exp.is_dir():
            raise CiftInputError(f"{self.data_dir}: no exp/ folder (expected exp/*_id.txt)")
        train_ids = read_id_file(exp / "train_id.txt") + read_id_file(exp / "val_id.txt")
        test_ids = list(dict.fromkeys(read_id_file(exp / "test_id.txt")))
        check_disjoint_ids(exp, train_ids, test_ids)
        train = list_identity_images(self.data_dir, sorted(set(train_ids)),
                                     VISIBLE_CAMERAS + INFRARED_CAMERAS)
        train = [(path, f"{self.dataset_name}_{pid}", cam, mod) for path, pid, cam, mod in train]
        query = list_identity_images(self.data_dir, test_ids, INFRARED_CAMERAS)
        gallery = list_identity_images(self.data_dir, test_ids, VISIBLE_CAMERAS)
        super().__init__(train, query, gallery, **kwargs)

    def prepare(self, data_dir: Path) -> Path:
        """Check that the data set folder exists; subclasses may create it first."""
        return require_dataset_folder(data_dir)

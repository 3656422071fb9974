"""RegDB read in place from its distributed layout, one of the ten standard splits at a time."""
from __future__ import annotations

from pathlib import Path

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from ...errors import CiftInputError
from ..modality import INFRARED, VISIBLE
from .common import read_text, require_dataset_folder

TRIALS = range(1, 11)
# RegDB has no camera ids; like the reference metric, the visible images count as camera 1 and
# the thermal ones as camera 2.
VISIBLE_CAMID = 1
THERMAL_CAMID = 2


def read_index_file(path: Path, data_dir: Path) -> list[tuple[str, int]]:
    """Parse an index file of `relative/path label` lines into (image path, label) pairs.

    Paths are relative to `data_dir` (the data set folder), as the reference loaders join them;
    labels are non-negative integers. Blank lines are skipped; every listed image must exist.
    """
    if not path.is_file():
        raise CiftInputError(f"{path}: index file not found (expected `relative/path label` "
                             f"lines; see datasets/README.md)")
    items = []
    text = read_text(path, "`relative/path label` lines")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise CiftInputError(f"{path}:{number}: expected `relative/path label`, "
                                 f"got {line.strip()!r}")
        relative, label = fields
        if not (label.isascii() and label.isdigit()):
            raise CiftInputError(f"{path}:{number}: label {label!r} is not a non-negative "
                                 f"integer")
        if Path(relative).is_absolute():
            raise CiftInputError(f"{path}:{number}: image path {relative!r} is not relative "
                                 f"to {data_dir}")
        image = data_dir / relative
        if not image.is_file():
            raise CiftInputError(f"{path}:{number}: image {image} not found")
        items.append((str(image), int(label)))
    return items


def check_trial(trial) -> int:
    """Return `trial` when it is an integer split number in 1..10."""
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in TRIALS:
        raise CiftInputError(f"RegDB: trial {trial!r} is not a split number "
                             f"{TRIALS.start}..{TRIALS.stop - 1}")
    return trial


@DATASET_REGISTRY.register()
class RegDB(ImageDataset):
    """RegDB (Nguyen et al., "Person Recognition System Based on a Combination of Body Images
    from Visible Light and Thermal Cameras", Sensors 2017), with the ten random splits of Ye et
    al. (https://github.com/mangye16/Cross-Modal-Re-ID-baseline).

    URL: http://dm.dongguk.edu/link.html (download on request from the authors).
    Layout under `$FASTREID_DATASETS/RegDB`: `Visible/`, `Thermal/` and
    `idx/{train,test}_{visible,thermal}_{1..10}.txt`, one `relative/path label` line per image,
    the path relative to the RegDB folder (e.g. `Visible/male/3/<name>.bmp 2`).

    412 identities with 10 visible and 10 thermal images each. Trial t (1..10) splits them into
    206 train identities (2,060 + 2,060 images) and 206 test identities: query = the visible test
    images, gallery = the thermal test images (2,060 each); the evaluator also swaps the two for
    thermal→visible. Labels are those of the index files (the same person has the same label in
    the visible and thermal files of a trial); training pids are prefixed "regdb_". Items are
    (img_path, pid, camid, modality) with camid 1 for visible and 2 for thermal images, and
    modality "visible" or "infrared" (thermal).
    """

    dataset_dir = "RegDB"
    dataset_name = "regdb"
    protocol = "regdb"  # evaluation tasks: cift.evaluation.tasks.build_tasks

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """Constructor arguments from the config: the split DATASETS.REGDB.SPLIT."""
        return dict(trial=cfg.DATASETS.REGDB.SPLIT)

    def __init__(self, root: str = "datasets", trial: int = 1, **kwargs):
        self.trial = check_trial(trial)
        self.root = Path(root)
        self.data_dir = require_dataset_folder(self.root / self.dataset_dir)
        train = (self._read("train", "visible", VISIBLE_CAMID, VISIBLE)
                 + self._read("train", "thermal", THERMAL_CAMID, INFRARED))
        train = [(path, f"{self.dataset_name}_{pid}", cam, mod) for path, pid, cam, mod in train]
        query = self._read("test", "visible", VISIBLE_CAMID, VISIBLE)
        gallery = self._read("test", "thermal", THERMAL_CAMID, INFRARED)
        super().__init__(train, query, gallery, **kwargs)

    def _read(self, split: str, kind: str, camid: int, modality: str
              ) -> list[tuple[str, int, int, str]]:
        index = self.data_dir / "idx" / f"{split}_{kind}_{self.trial}.txt"
        return [(path, label, camid, modality)
                for path, label in read_index_file(index, self.data_dir)]

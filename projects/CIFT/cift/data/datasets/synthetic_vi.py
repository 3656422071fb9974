"""SyntheticVI: a small generated data set in the SYSU-MM01 raw layout (the embedded default)."""
from __future__ import annotations

from pathlib import Path

from fastreid.data.datasets import DATASET_REGISTRY

from ...errors import CiftInputError
from ..synthetic import ensure_synthetic_sysu
from .sysu_mm01 import SYSUMM01


@DATASET_REGISTRY.register()
class SyntheticVI(SYSUMM01):
    """Synthetic visible-infrared identities, generated on first use (see `cift.data.synthetic`).

    Written to `$FASTREID_DATASETS/SyntheticVI` in the SYSU-MM01 raw layout, so the demo runs
    the same loader, sampler and protocol as the real benchmark. Cameras 1, 2, 4, 5 render in
    colour, cameras 3 and 6 in grey: mostly a fixed response to the colour, partly hidden.
    """

    dataset_dir = "SyntheticVI"
    dataset_name = "syntheticvi"

    @classmethod
    def config_kwargs(cls, cfg) -> dict:
        """Constructor arguments from DATASETS.SYNTHETIC.* (see cift.data.build.load_dataset)."""
        s = cfg.DATASETS.SYNTHETIC
        return dict(num_ids=s.NUM_IDS, images_per_camera=s.IMAGES_PER_CAMERA,
                    test_ids=s.TEST_IDS, val_ids=s.VAL_IDS, seed=s.SEED)

    def __init__(self, root: str = "datasets", num_ids: int = 60, images_per_camera: int = 12,
                 test_ids: int = 20, val_ids: int = 8, seed: int = 0, **kwargs):
        self.generator_args = dict(num_ids=num_ids, images_per_camera=images_per_camera,
                                   test_ids=test_ids, val_ids=val_ids, seed=seed)
        super().__init__(root, **kwargs)

    def prepare(self, data_dir: Path) -> Path:
        try:
            return ensure_synthetic_sysu(data_dir, **self.generator_args)
        except (ValueError, FileExistsError) as err:  # bad DATASETS.SYNTHETIC.* or stale folder
            raise CiftInputError(f"SyntheticVI: {err}") from None

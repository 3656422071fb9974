"""Test helper, run as a script: writes a features file (docs/features.md) for a SYSU-MM01-layout
tree the way another code base's plain PyTorch test loop would, without importing cift.

    python tests/helpers/plain_features.py DATA_DIR OUT_FILE [--dim 64] [--coarse]

DATA_DIR is the data set's folder (cam1..cam6, exp/test_id.txt); OUT_FILE's suffix (.npz, .pt
or .safetensors) picks the container. The "model" gives random features (seeded), L2-normalised
as the public VI-ReID models do in their test forward; --coarse rounds them to quarters, so that
many distances tie exactly.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

QUERY_CAMERAS, GALLERY_CAMERAS = (3, 6), (1, 2, 4, 5)


def listing(data_dir: str) -> list[tuple[str, int, int, str, bool]]:
    """(path relative to data_dir, pid, camid, modality, is query) in the order the features file
    wants: every query (test ids in test_id.txt order, cameras 3 then 6, file names sorted),
    then the gallery pool the same way over cameras 1, 2, 4, 5."""
    with open(os.path.join(data_dir, "exp", "test_id.txt")) as f:
        test_ids = [int(t) for t in f.read().replace("\n", ",").split(",") if t.strip()]
    rows = []
    for cameras, modality, is_query in ((QUERY_CAMERAS, "infrared", True),
                                        (GALLERY_CAMERAS, "visible", False)):
        for pid in test_ids:
            for cam in cameras:
                folder = os.path.join(f"cam{cam}", f"{pid:04d}")
                if os.path.isdir(os.path.join(data_dir, folder)):
                    for name in sorted(os.listdir(os.path.join(data_dir, folder))):
                        rows.append((f"{folder}/{name}", pid, cam, modality, is_query))
    return rows


class Images(torch.utils.data.Dataset):
    def __init__(self, data_dir: str, rows: list):
        self.data_dir, self.rows = data_dir, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = Image.open(os.path.join(self.data_dir, self.rows[i][0])).convert("RGB")
        return torch.from_numpy(np.asarray(image.resize((8, 16)), dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("out")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--coarse", action="store_true")
    args = parser.parse_args()
    rows = listing(args.data_dir)
    generator = torch.Generator().manual_seed(0)
    feats = []
    with torch.no_grad():
        for images in torch.utils.data.DataLoader(Images(args.data_dir, rows), batch_size=16):
            feats.append(F.normalize(torch.randn(len(images), args.dim, generator=generator)))
    feats = torch.cat(feats)
    if args.coarse:
        feats = torch.round(feats * 4) / 4
    fields = {"feats": feats, "pids": torch.tensor([r[1] for r in rows]),
              "camids": torch.tensor([r[2] for r in rows]),
              "query": torch.tensor([r[4] for r in rows])}
    strings = {"format_version": 1, "benchmark": "SYSU-MM01",
               "dataset": os.path.basename(os.path.normpath(args.data_dir)),
               "modality": [r[3] for r in rows], "paths": [r[0] for r in rows]}
    if args.out.endswith(".npz"):
        np.savez(args.out, **{k: v.numpy() for k, v in fields.items()},
                 **{k: np.asarray(v) for k, v in strings.items()})
    elif args.out.endswith(".pt"):
        torch.save({**fields, **strings}, args.out)
    else:
        from safetensors.torch import save_file
        save_file(fields, args.out, metadata={k: json.dumps(v) for k, v in strings.items()})
    assert not any(m == "cift" or m.startswith("cift.") for m in sys.modules)


if __name__ == "__main__":
    main()

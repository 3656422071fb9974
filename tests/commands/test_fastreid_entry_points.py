"""fastreid's own entry points with `import cift`: a fastreid-style train_net.py with
CIFTTrainer prints the protocol tables, data sets take their options through their own config
hook, and fastreid's DefaultTrainer refuses cift's training data in one line."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.engine import DefaultTrainer

from cift.config import load_config
from cift.errors import CiftInputError
from helpers import DEMO, ROOT
from helpers.runs import TINY

CIFT_DATASETS = ("SYSUMM01", "RegDB", "LLCM", "SyntheticVI")

# What a fastreid user writes (fastreid's tools/train_net.py, with cift's config and trainer).
FASTREID_STYLE_SCRIPT = textwrap.dedent('''
    import cift  # noqa: F401
    from cift import add_cift_config
    from cift.engine import CIFTTrainer
    from fastreid.config import get_cfg
    from fastreid.engine import default_argument_parser, default_setup, launch


    def setup(args):
        cfg = get_cfg()
        add_cift_config(cfg)
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        cfg.freeze()
        default_setup(cfg, args)
        return cfg


    def main(args):
        trainer = CIFTTrainer(setup(args))
        trainer.resume_or_load(resume=args.resume)
        return trainer.train()


    if __name__ == "__main__":
        args = default_argument_parser().parse_args()
        launch(main, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
''')


def test_fastreid_style_script_with_cift_trainer_prints_the_tables(env, tmp_path):
    script = tmp_path / "train_net.py"
    script.write_text(FASTREID_STYLE_SCRIPT)
    out = tmp_path / "run"
    pythonpath = os.pathsep.join([str(ROOT / "projects" / "CIFT"), os.environ.get("PYTHONPATH",
                                                                                   "")])
    done = subprocess.run(
        [sys.executable, str(script), "--config-file", DEMO, *TINY, "OUTPUT_DIR", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": pythonpath, "FASTREID_DATASETS": str(env)})
    assert done.returncode == 0, done.stderr[-3000:]
    title = "SyntheticVI protocol (mean ± std over trials, %)"
    assert title in done.stdout
    assert "| all-single" in done.stdout
    assert title in (out / "log.txt").read_text()


def test_every_cift_data_set_takes_its_options_from_its_config_hook():
    cfg = load_config(DEMO, ["DATASETS.SYNTHETIC.NUM_IDS", "197", "DATASETS.SYNTHETIC.SEED", "3",
                             "DATASETS.REGDB.SPLIT", "4"])
    for name in CIFT_DATASETS:
        assert hasattr(DATASET_REGISTRY.get(name), "config_kwargs"), name
    synthetic = DATASET_REGISTRY.get("SyntheticVI").config_kwargs(cfg)
    assert synthetic["num_ids"] == 197 and synthetic["seed"] == 3
    assert synthetic["test_ids"] == cfg.DATASETS.SYNTHETIC.TEST_IDS
    assert DATASET_REGISTRY.get("RegDB").config_kwargs(cfg) == {"trial": 4}
    assert DATASET_REGISTRY.get("SYSUMM01").config_kwargs(cfg) == {}


@pytest.mark.parametrize("opts, named", [
    ((), "CrossModalityIdentitySampler"),
    (("DATALOADER.SAMPLER_TRAIN", "NaiveIdentitySampler"), "SyntheticVI"),
])
def test_fastreid_default_trainer_refuses_cift_training_data_in_one_line(env, tmp_path, opts,
                                                                          named):
    cfg = load_config(DEMO, [*TINY, "OUTPUT_DIR", str(tmp_path / "out"), *opts])
    with pytest.raises(CiftInputError) as err:
        DefaultTrainer(cfg)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and named in message and "CIFTTrainer" in message

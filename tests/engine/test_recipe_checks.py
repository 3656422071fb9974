"""The recipe keys (transforms, CMC variant) are checked before anything is written."""

import pytest

from helpers import DEMO
from helpers.runs import TINY, run_cli


@pytest.mark.parametrize("key,value,expected", [
    ("TEST.CMC_MODE", "pictures", "TEST.CMC_MODE 'pictures'"),
    ("INPUT.INTERPOLATION", "nearest", "INPUT.INTERPOLATION 'nearest'"),
    ("INPUT.REA.RATIO_SAMPLING", "normal", "INPUT.REA.RATIO_SAMPLING 'normal'"),
    ("INPUT.REA.ATTEMPTS", "0", "INPUT.REA.ATTEMPTS 0"),
])
def test_recipe_keys_are_checked_before_anything_is_written(key, value, expected, tmp_path, env,
                                                            capsys):
    out = tmp_path / "out"
    rc = run_cli("--config-file", DEMO, *TINY, key, value, "OUTPUT_DIR", str(out))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and expected in err
    assert not out.exists()

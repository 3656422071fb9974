"""Config files and KEY VALUE options (cift.config_files): each malformed structure is one line
naming the file (and the key), never a traceback or a dump of a config node."""
from __future__ import annotations

import pytest

from cift.config import keys_set, load_config
from cift.config_files import decode_value
from helpers import DEMO, ROOT
from helpers.errors import one_line_error


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, got", [
    ("- SOLVER\n- TEST\n", "a list (['SOLVER', 'TEST'])"),
    ("3\n", "a int (3)"),
    ("just words\n", "a str ('just words')"),
    ("", "an empty file"),
    ("# only a comment\n", "an empty file"),
])
def test_a_file_that_is_not_a_mapping_is_one_line(tmp_path, text, got):
    path = write(tmp_path / "top.yml", text)
    assert one_line_error(load_config, path) == (
        f"{path}: expected a mapping of config keys (KEY: value) at the top, got {got}")


def test_a_group_given_a_value_names_the_group_not_its_keys(tmp_path):
    path = write(tmp_path / "group.yml", f"_BASE_: {DEMO}\nSOLVER: 3\n")
    assert one_line_error(load_config, path) == (
        f"{path}: SOLVER 3: expected a mapping of the keys under SOLVER (e.g. SOLVER.AMP)")
    assert one_line_error(load_config, DEMO, ["SOLVER", "3"]) == (
        "SOLVER 3: expected a mapping of the keys under SOLVER (e.g. SOLVER.AMP)")


def test_a_key_given_a_mapping_is_one_line(tmp_path):
    path = write(tmp_path / "leaf.yml", f"_BASE_: {DEMO}\nSOLVER:\n  BASE_LR:\n    X: 1\n")
    assert one_line_error(load_config, path) == (
        f"{path}: SOLVER.BASE_LR {{'X': 1}}: expected a value, not a mapping of keys")


def test_a_base_naming_itself_is_a_cycle(tmp_path):
    path = write(tmp_path / "self.yml", "_BASE_: self.yml\nSEED: 1\n")
    assert one_line_error(load_config, path) == (
        f"{path}: _BASE_ cycle: {path} -> {path}")


def test_a_cycle_of_bases_is_named_in_order(tmp_path):
    a, b, c = (str(tmp_path / f"{n}.yml") for n in "abc")
    write(tmp_path / "a.yml", "_BASE_: b.yml\n")
    write(tmp_path / "b.yml", "_BASE_: c.yml\n")
    write(tmp_path / "c.yml", "_BASE_: b.yml\n")
    assert one_line_error(load_config, a) == f"{c}: _BASE_ cycle: {b} -> {c} -> {b}"


def test_a_missing_or_malformed_base_is_named(tmp_path):
    path = write(tmp_path / "leaf.yml", "_BASE_: no_such_base.yml\n")
    assert one_line_error(load_config, path) == (
        f"{path}: _BASE_ {tmp_path / 'no_such_base.yml'}: config file not found")
    path = write(tmp_path / "leaf2.yml", "_BASE_: [a.yml]\n")
    assert one_line_error(load_config, path) == (
        f"{path}: _BASE_ ['a.yml']: expected the path of a config file")


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = write(tmp_path / "latin1.yml", "SOLVER:\n  OPT: SGD # caf\xe9\n".encode("latin-1"))
    assert one_line_error(load_config, path) == f"{path}: not UTF-8 text (byte 24: b'\\xe9')"


def test_yaml_syntax_is_named_with_line_and_column(tmp_path):
    path = write(tmp_path / "syntax.yml", "SOLVER: [unclosed\n")
    message = one_line_error(load_config, path)
    assert message.startswith(f"{path}: not valid YAML: line ")


def test_a_folder_or_missing_file_is_named(tmp_path):
    assert one_line_error(load_config, str(tmp_path)) == f"{tmp_path}: config file not found"


@pytest.mark.parametrize("opts, line", [
    (["SOLVER.MAX_EPOCH"], "command-line options: expected KEY VALUE pairs, got 1 items (the "
                           "last, 'SOLVER.MAX_EPOCH', has no value)"),
    (["_BASE_", "x.yml"], "_BASE_: unknown key"),
    (["SOLVER..BASE_LR", "1"], "SOLVER..BASE_LR: unknown key; did you mean SOLVER.BASE_LR?"),
    (["NOT.A.KEY", "1"], "NOT.A.KEY: unknown key"),
])
def test_options_that_are_not_key_value_pairs_are_one_line(opts, line):
    assert one_line_error(load_config, DEMO, opts) == line


def test_values_decode_as_fastreid_decodes_them(tmp_path):
    """A YAML string that reads as a Python literal is that literal (yacs' rule), so 1e-3
    (a string to YAML) is a number and ("all",) a tuple."""
    path = write(tmp_path / "lit.yml", f"_BASE_: {DEMO}\nSOLVER:\n  BASE_LR: 1e-3\n"
                                       "TEST:\n  SYSU:\n    MODES: ('all',)\n")
    cfg = load_config(path)
    assert cfg.SOLVER.BASE_LR == 1e-3 and cfg.TEST.SYSU.MODES == ("all",)
    assert decode_value("logs/x") == "logs/x" and decode_value("[1, 2]") == [1, 2]
    assert decode_value("((((" * 100) == "((((" * 100  # not a literal: kept as text


def test_keys_set_says_where_each_key_came_from(tmp_path):
    path = write(tmp_path / "leaf.yml", f"_BASE_: {DEMO}\nSEED: 3\n")
    origins = keys_set(path, ["SEED", "4", "MODEL.DEVICE", "cpu"])
    assert origins["SEED"] == "" and origins["MODEL.DEVICE"] == ""
    assert origins["SOLVER.MAX_EPOCH"] == DEMO
    assert "SOLVER.CLIP_GRADIENTS.NORM_TYPE" not in keys_set(path)


@pytest.mark.parametrize("config", [DEMO, str(ROOT / "configs/SYSU-MM01/cift_R50.yml")])
def test_a_dumped_config_loads_back_unchanged(config, tmp_path):
    """A run's config.yaml (fastreid dumps tuples as lists) reads back as the same config."""
    cfg = load_config(config)
    path = write(tmp_path / "config.yaml", cfg.dump())
    assert load_config(path) == cfg

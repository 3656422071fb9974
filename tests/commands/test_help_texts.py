"""`--help` of the benchmarks and tools shows their description whole, not cut mid-sentence."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import ROOT, load_script

SCRIPTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py")) + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "projects/CIFT/tools").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_the_whole_first_paragraph(script, monkeypatch, capsys):
    module = load_script(script, "help_" + Path(script).stem)
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as done:
        if hasattr(module, "parse_args"):
            module.parse_args()
        elif hasattr(module, "argument_parser"):
            module.argument_parser().parse_args()
        else:
            module.main()
    assert done.value.code == 0
    first_paragraph = " ".join(module.__doc__.split("\n\n")[0].split())
    assert first_paragraph in " ".join(capsys.readouterr().out.split())

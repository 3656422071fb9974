"""Checks that a bad input is reported as the project promises: in one line."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from cift.errors import CiftInputError


def error_message(excinfo: pytest.ExceptionInfo) -> str:
    """The message of a caught error, asserted to be one line."""
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def one_line_error(call: Callable, *args, **kwargs) -> str:
    """The one-line message of the CiftInputError that `call(*args, **kwargs)` raises."""
    with pytest.raises(CiftInputError) as err:
        call(*args, **kwargs)
    return error_message(err)


def error_line(capsys) -> str:
    """The one `error:` line of a command (fastreid's set-up may log other lines first)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]

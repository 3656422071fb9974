"""The exception types entry points report in one line: bad user input (paths, config keys,
data files) and a distributed job that cannot go on.

Entry points print the message as a single line and exit with status 2 (input) or 1 (job)
instead of a traceback.
"""


class CiftInputError(ValueError):
    """Bad input from the user: a missing path, a malformed file, an unknown key or value."""


class CiftJobError(RuntimeError):
    """A job that cannot go on for a reason outside its inputs (a process of a distributed
    job went silent); entry points print it as one `error: ...` line and exit with status 1."""


def name_list(names: list[str], most: int) -> str:
    """The first `most` of `names`, comma-separated, then "and N more" for the rest; for
    messages that name parameters or files without growing without bound."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def error_line(err: BaseException) -> str:
    """The one line that states `err`. DataLoader workers re-raise with the worker's traceback
    in the message: its last line, `cift.errors.<Type>: <message>`, holds the message."""
    import re

    lines = str(err).strip().splitlines()
    last = lines[-1] if lines else type(err).__name__
    return re.sub(r"^cift(\.\w+)+: ", "", last) if len(lines) > 1 else last


def print_input_error(err: BaseException) -> int:
    """Print `err` as one `error: ...` line on stderr (:func:`error_line`) and return the exit
    status: 1 for a CiftJobError, 2 for anything else (input)."""
    import sys

    print(f"error: {error_line(err)}", file=sys.stderr)
    return 1 if isinstance(err, CiftJobError) else 2


def check_choice(key: str, value, allowed: tuple) -> None:
    """Raise CiftInputError naming `key` when `value` is not one of `allowed`."""
    if value not in allowed:
        raise CiftInputError(f"{key} {value!r}: expected one of {allowed}")

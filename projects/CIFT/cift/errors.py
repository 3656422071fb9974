"""The one exception type for bad user input (paths, config keys, data files).

Entry points print its message as a single line and exit with status 2 instead of a traceback.
"""


class CiftInputError(ValueError):
    """Bad input from the user: a missing path, a malformed file, an unknown key or value."""


def print_input_error(err: BaseException) -> int:
    """Print `err` as one `error: ...` line on stderr and return the exit status 2.

    DataLoader workers re-raise with the worker's traceback in the message: its last line is
    the cause.
    """
    import sys

    print(f"error: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
    return 2


def check_choice(key: str, value, allowed: tuple) -> None:
    """Raise CiftInputError naming `key` when `value` is not one of `allowed`."""
    if value not in allowed:
        raise CiftInputError(f"{key} {value!r}: expected one of {allowed}")

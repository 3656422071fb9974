"""The one exception type for bad user input (paths, config keys, data files).

Entry points print its message as a single line and exit with status 2 instead of a traceback.
"""


class CiftInputError(ValueError):
    """Bad input from the user: a missing path, a malformed file, an unknown key or value."""

"""Reading person images: one decoder for every reader (data sets, search, plots)."""
from __future__ import annotations

from PIL import Image

from ..errors import CiftInputError

# What decoding a broken file raises (PIL raises SyntaxError for some malformed PNG chunks, and
# DecompressionBombError for an image of more than twice Image.MAX_IMAGE_PIXELS pixels).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def display_path(path: str) -> str:
    """`path` printable in a message: the bytes of a file name that are not UTF-8 (which Python
    keeps as lone surrogates) shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def decode_error_text(err: BaseException) -> str:
    """The first line of a decoding error's message (its type name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def decode_rgb(path: str) -> Image.Image:
    """The decoded image as RGB (infrared images are replicated to 3 channels, as in training);
    a file that cannot be decoded raises one of DECODE_ERRORS."""
    with Image.open(path) as image:
        return image.convert("RGB")


def read_rgb(path: str) -> Image.Image:
    """:func:`decode_rgb` for an image a data set lists: a file that cannot be decoded (missing,
    truncated, not an image, a decompression bomb) raises CiftInputError naming the path, in the
    process that reads it (a data-loader worker's error reaches the job as that one line)."""
    try:
        return decode_rgb(path)
    except DECODE_ERRORS as err:
        raise CiftInputError(f"{display_path(path)}: cannot read image "
                             f"({decode_error_text(err)})") from None

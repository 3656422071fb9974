"""Reading person images: one decoder for every reader (data sets, search, plots)."""
from __future__ import annotations

from PIL import Image

from ..errors import CiftInputError

# What decoding a broken file raises (PIL raises SyntaxError for some malformed PNG chunks).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_rgb(path: str) -> Image.Image:
    """The decoded image as RGB (infrared images are replicated to 3 channels, as in training);
    a file that cannot be decoded raises one of DECODE_ERRORS."""
    with Image.open(path) as image:
        return image.convert("RGB")


def read_rgb(path: str) -> Image.Image:
    """:func:`decode_rgb` for an image a data set lists: an unreadable file raises
    CiftInputError naming the path."""
    try:
        return decode_rgb(path)
    except (OSError, ValueError) as err:
        raise CiftInputError(f"{path}: cannot read image ({err})") from None

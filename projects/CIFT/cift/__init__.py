"""CIFT-ReID: visible-infrared person re-identification on fastreid.

`import cift` adapts fastreid 1.4.0 to the current torch/Python/numpy stack (cift.compat) and
registers every component: data sets, heads, meta-architectures.
"""
try:
    import fastreid  # noqa: F401
except ImportError:  # one line that says how to fix it
    raise ImportError("cift needs fastreid 1.4.0: pip install --no-deps fastreid==1.4.0 "
                      "(see README: its metadata pins an old torch)") from None

from . import compat

compat.apply()

from .log_forwarding import forward_to_fastreid  # noqa: E402

forward_to_fastreid()

from . import data, evaluation, modeling  # noqa: E402  only registration
from .config import add_cift_config, load_config  # noqa: E402
from .errors import CiftInputError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["compat", "data", "evaluation", "modeling", "add_cift_config", "load_config",
           "CiftInputError"]

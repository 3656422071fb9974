"""Models: heads, meta-architectures and losses for VI-ReID."""
from . import heads, meta_arch  # only registration
from .losses import hcc_loss

__all__ = ["heads", "meta_arch", "hcc_loss"]

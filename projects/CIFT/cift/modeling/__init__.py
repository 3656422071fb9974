"""Models: backbone, heads, meta-architectures and losses for VI-ReID."""
from . import backbone, heads, meta_arch  # only registration
from .losses import hcc_loss

__all__ = ["backbone", "heads", "meta_arch", "hcc_loss"]

"""Models: backbone, meta-architectures with their head, graph, losses for VI-ReID."""
from . import backbone, meta_arch  # only registration
from .losses import hcc_loss

__all__ = ["backbone", "meta_arch", "hcc_loss"]

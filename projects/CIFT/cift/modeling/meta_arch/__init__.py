"""Meta-architectures registered in fastreid's META_ARCH_REGISTRY (and their head in
REID_HEADS_REGISTRY)."""
from .cift import CIFT, BNNeckHead, VIBaseline  # only registration

__all__ = ["BNNeckHead", "CIFT", "VIBaseline"]

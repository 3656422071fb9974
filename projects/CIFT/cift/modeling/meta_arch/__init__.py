"""Meta-architectures registered in fastreid's META_ARCH_REGISTRY."""
from .cift import CIFT  # only registration
from .vi_baseline import VIBaseline  # only registration

__all__ = ["CIFT", "VIBaseline"]

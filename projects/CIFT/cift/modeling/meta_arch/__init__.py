"""Meta-architectures registered in fastreid's META_ARCH_REGISTRY."""
from .vi_baseline import VIBaseline  # only registration

__all__ = ["VIBaseline"]

"""VI-ReID data sets registered in fastreid's DATASET_REGISTRY."""
from .sysu_mm01 import SYSUMM01  # only registration
from .synthetic_vi import SyntheticVI  # only registration

__all__ = ["SYSUMM01", "SyntheticVI"]

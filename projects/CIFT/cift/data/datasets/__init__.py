"""VI-ReID data sets registered in fastreid's DATASET_REGISTRY."""
from .llcm import LLCM  # only registration
from .regdb import RegDB  # only registration
from .synthetic_vi import SyntheticVI  # only registration
from .sysu_mm01 import SYSUMM01  # only registration

__all__ = ["LLCM", "RegDB", "SYSUMM01", "SyntheticVI"]

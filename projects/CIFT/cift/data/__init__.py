"""VI-ReID data: data sets, cross-modality sampler, transforms and loaders."""
from . import datasets  # only registration
from .build import build_vi_test_loader, build_vi_train_loader, build_vi_train_set
from .cross_modality_sampler import CrossModalityIdentitySampler
from .modality import INFRARED, VISIBLE

__all__ = ["datasets", "build_vi_test_loader", "build_vi_train_loader", "build_vi_train_set",
           "CrossModalityIdentitySampler", "INFRARED", "VISIBLE"]

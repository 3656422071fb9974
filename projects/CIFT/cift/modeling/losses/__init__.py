from .hcc import hcc_loss

__all__ = ["hcc_loss"]

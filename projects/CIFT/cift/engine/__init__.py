"""Training engine: the fastreid Trainer subclass and checkpointing."""
from .checkpoint import AtomicCheckpointer
from .trainer import CIFTTrainer

__all__ = ["AtomicCheckpointer", "CIFTTrainer"]

"""VI-ReID evaluation: protocols (pure numpy) and the fastreid evaluator."""
from .protocols import evaluate_sysu, sample_sysu_gallery
from .sysu_evaluator import SYSUEvaluator
from .sysu_runs import format_protocol_table, run_sysu_protocol

__all__ = ["evaluate_sysu", "sample_sysu_gallery", "SYSUEvaluator", "format_protocol_table",
           "run_sysu_protocol"]

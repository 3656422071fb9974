"""VI-ReID evaluation: protocols (pure numpy), tasks, the fastreid evaluator, reports."""
from .protocols import (
    evaluate_llcm,
    evaluate_regdb,
    evaluate_sysu,
    sample_llcm_gallery,
    sample_sysu_gallery,
)
from .report import compare_table, format_protocol_table, load_run_results
from .tasks import Task, build_tasks, run_sysu_protocol, run_tasks
from .vi_evaluator import VIEvaluator

__all__ = ["evaluate_llcm", "evaluate_regdb", "evaluate_sysu", "sample_llcm_gallery",
           "sample_sysu_gallery", "compare_table", "format_protocol_table", "load_run_results",
           "Task", "build_tasks", "run_sysu_protocol", "run_tasks", "VIEvaluator"]

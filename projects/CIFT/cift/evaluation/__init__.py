"""VI-ReID evaluation: protocols (pure numpy), tasks, the fastreid evaluator, reports."""
from .protocols import (
    evaluate_llcm,
    evaluate_llcm_top_r,
    evaluate_regdb,
    evaluate_regdb_top_r,
    evaluate_sysu,
    evaluate_sysu_top_r,
    sample_llcm_gallery,
    sample_sysu_gallery,
)
from .report import compare_table, format_protocol_table, load_run_results
from .retrieval import feature_search
from .tasks import Task, build_tasks, run_sysu_protocol, run_tasks, run_tasks_top_r
from .vi_evaluator import VIEvaluator

__all__ = ["evaluate_llcm", "evaluate_llcm_top_r", "evaluate_regdb", "evaluate_regdb_top_r",
           "evaluate_sysu", "evaluate_sysu_top_r", "sample_llcm_gallery", "sample_sysu_gallery",
           "compare_table", "format_protocol_table", "load_run_results", "feature_search", "Task",
           "build_tasks", "run_sysu_protocol", "run_tasks", "run_tasks_top_r", "VIEvaluator"]

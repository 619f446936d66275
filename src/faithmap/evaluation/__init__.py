"""Evaluation: run methods × metrics over datasets and report (``fm.evaluate``)."""

from .data import EvalData, load_eval_data
from .results import EvaluationResult, mean_ci
from .runner import DEFAULT_METRICS, evaluate

__all__ = ["DEFAULT_METRICS", "EvalData", "EvaluationResult", "evaluate", "load_eval_data",
           "mean_ci"]

"""Evaluation figures shared by the built-in applications, as JSON-ready dicts.

Every dict has ``score`` (higher is better, comparable across nodes of one run) and
``samples``. Per-class figures are lists indexed by class, ``None`` for a class absent
from the evaluation set.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np


def per_class_accuracy(correct: np.ndarray, classes: np.ndarray, n_classes: int) -> List[Optional[float]]:
    """For each class ``c``: the fraction of samples of class ``c`` that are ``correct``."""
    totals = np.bincount(classes, minlength=n_classes)
    hits = np.bincount(classes, weights=correct, minlength=n_classes)
    return [float(h / t) if t else None for h, t in zip(hits, totals)]


def _require_samples(n: int) -> None:
    if n == 0:
        raise ValueError("cannot evaluate on zero samples")


def classification_scores(correct: np.ndarray, classes: np.ndarray, n_classes: int) -> Dict[str, Any]:
    """``accuracy`` (= ``score``) and ``per_class`` accuracy, given which predictions were correct."""
    _require_samples(len(correct))
    accuracy = float(np.mean(correct))
    return {"score": accuracy, "accuracy": accuracy, "samples": int(len(correct)),
            "per_class": per_class_accuracy(correct, classes, n_classes)}


def regression_scores(predicted: np.ndarray, actual: np.ndarray) -> Dict[str, Any]:
    """``rmse`` (``score`` is its negative) and ``mae``."""
    errors = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    _require_samples(len(errors))
    rmse, mae = float(np.sqrt(np.mean(errors ** 2))), float(np.mean(np.abs(errors)))
    return {"score": -rmse, "rmse": rmse, "mae": mae, "samples": int(len(errors))}

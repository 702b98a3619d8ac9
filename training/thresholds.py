"""Per-label decision thresholds tuned on validation scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def f1_at(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Binary F1 of ``scores >= threshold`` against 0/1 ``y_true``."""
    pred = scores >= threshold
    tp = float(np.sum(pred & (y_true == 1)))
    fp = float(np.sum(pred & (y_true == 0)))
    fn = float(np.sum(~pred & (y_true == 1)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def tune_thresholds(
    y_true: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    floor: float = 0.2,
    min_positives: int = 5,
    default: float = 0.5,
    grid: np.ndarray = DEFAULT_GRID,
) -> dict[str, Any]:
    """Choose, for each label, the threshold that maximises its F1 on the given scores.

    * Only thresholds >= ``floor`` are considered: a very low threshold tuned on a small
      validation set would flag a large share of real-world posts.
    * A label with fewer than ``min_positives`` positives keeps ``default`` (too little
      evidence to tune).
    * A label whose F1 is 0 at every allowed threshold also keeps ``default``.
    * Ties are broken towards the threshold closest to ``default``.

    Returns ``{"thresholds": {label: t}, "default": default, "floor": floor,
    "min_positives": min_positives, "details": {label: {...}}}`` ready for ``thresholds.json``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 2 or y.shape[1] != len(labels):
        raise ValueError(f"y_true {y.shape} and scores {s.shape} must both be (n, {len(labels)})")
    candidates = grid[grid >= floor]
    thresholds: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(labels):
        positives = int(y[:, i].sum())
        if positives < min_positives:
            thresholds[name] = default
            details[name] = {"method": "fallback", "positives": positives,
                             "f1_at_threshold": f1_at(y[:, i], s[:, i], default)}
            continue
        f1s = np.array([f1_at(y[:, i], s[:, i], float(t)) for t in candidates])
        best = f1s.max()
        if best == 0.0:  # no allowed threshold catches a positive: nothing to tune towards
            thresholds[name] = default
            details[name] = {"method": "fallback_no_f1", "positives": positives, "f1_at_threshold": 0.0}
            continue
        ties = candidates[np.isclose(f1s, best)]
        chosen = float(ties[np.argmin(np.abs(ties - default))])
        thresholds[name] = chosen
        details[name] = {"method": "max_f1", "positives": positives, "f1_at_threshold": float(best),
                         "f1_at_default": f1_at(y[:, i], s[:, i], default)}
    return {"thresholds": thresholds, "default": default, "floor": floor,
            "min_positives": min_positives, "details": details}

"""Local ``evaluate`` metric modules, loaded by path so they work without the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent
LOCAL_METRICS = ("multilabel_classification", "multilabel_ranking", "calibration_error")


def load_metric(name: str) -> Any:
    """``evaluate.load`` one of :data:`LOCAL_METRICS` from this folder."""
    import evaluate

    if name not in LOCAL_METRICS:
        raise ValueError(f"unknown local metric {name!r}; available: {', '.join(LOCAL_METRICS)}")
    return evaluate.load(str(METRICS_DIR / name))

"""Per-label threshold tuning."""

import numpy as np
import pytest

from training.thresholds import f1_at, tune_thresholds


def test_tuning_finds_the_separating_threshold_and_respects_floor_and_fallback() -> None:
    y = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1], [0, 0, 0]])
    s = np.array([
        [0.80, 0.10, 0.15], [0.70, 0.20, 0.05], [0.30, 0.10, 0.12], [0.35, 0.90, 0.02],
        [0.65, 0.30, 0.01], [0.20, 0.40, 0.03], [0.75, 0.10, 0.18], [0.10, 0.05, 0.11],
    ])
    out = tune_thresholds(y, s, ["a", "b", "c"], floor=0.2, min_positives=2)
    t = out["thresholds"]
    assert 0.35 < t["a"] <= 0.65 and f1_at(y[:, 0], s[:, 0], t["a"]) == 1.0
    assert t["b"] == 0.5 and out["details"]["b"]["method"] == "fallback"  # one positive only
    # c's positives score 0.12-0.18, below the floor: no allowed threshold helps, keep 0.5
    assert t["c"] == 0.5 and out["details"]["c"]["method"] == "fallback_no_f1"
    assert out["details"]["a"]["method"] == "max_f1"


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="must both be"):
        tune_thresholds(np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"])

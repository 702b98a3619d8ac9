"""Per-label Platt scaling of the scores, folded into the classification head.

Training with per-label ``pos_weight`` makes the sigmoid scores over-confident on purpose (it
raises recall), so a score of 0.9 is not a 90 % chance. After training, each label gets a scale
``a`` and a bias ``b`` fitted on the validation split so that ``sigmoid(a * logit + b)`` minimises
the log loss (Platt 1999). Because the head is linear, ``a * (W h + c) + b`` equals a head with
rows ``a * W`` and bias ``a * c + b``: the calibration is written into the weights themselves, so
PyTorch, ONNX and a plain ``transformers.pipeline`` all return calibrated scores and inference
needs no extra step. A positive scale keeps the ranking of texts per label, so AP and ROC-AUC
do not change; thresholds are tuned afterwards on the calibrated scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.classifier import sigmoid

#: a fitted scale below this keeps the raw scores: the fit would be noise or invert the ranking
MIN_SCALE = 0.05
#: labels with fewer validation positives (or negatives) than this keep the raw scores: two
#: parameters fitted on a handful of texts would be noise
MIN_EXAMPLES = 5


def log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against 0/1 labels, numerically stable."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - t * z))


def fit_platt(logits: np.ndarray, y: np.ndarray, min_examples: int = MIN_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Per-label ``(scale, bias)`` minimising the log loss of ``sigmoid(scale * logit + bias)``.

    Args:
        logits: ``(n_texts, n_labels)`` raw max-over-windows logits.
        y: ``(n_texts, n_labels)`` 0/1 gold labels.
        min_examples: labels with fewer positives or negatives keep ``scale=1, bias=0``.
    """
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y, dtype=int)
    if z.shape != t.shape or z.ndim != 2:
        raise ValueError(f"logits {z.shape} and labels {t.shape} must be the same 2-D shape")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite (empty texts have no logits; leave them out)")
    scale, bias = np.ones(z.shape[1]), np.zeros(z.shape[1])
    for j in range(z.shape[1]):
        positives = int(t[:, j].sum())
        if min(positives, len(t) - positives) < max(1, min_examples):
            continue
        # the default L2 penalty is negligible against hundreds of texts, and keeps a perfectly
        # separated label from an unbounded scale
        fit = LogisticRegression(C=1.0).fit(z[:, [j]], t[:, j])
        a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        if a >= MIN_SCALE:
            scale[j], bias[j] = a, b
    return scale, bias


def classification_head(model: Any, num_labels: int) -> Any:
    """The last ``nn.Linear`` with ``num_labels`` outputs: the layer that produces the logits
    (``classifier`` in BERT and ALBERT, ``classifier.out_proj`` in RoBERTa-style heads)."""
    import torch

    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not heads or heads[-1].bias is None:
        raise ValueError(f"{type(model).__name__}: no linear output layer with {num_labels} outputs and a bias")
    return heads[-1]


def fold_into_head(model: Any, scale: np.ndarray, bias: np.ndarray) -> None:
    """Rewrite the output layer so that the model's logits become ``scale * logits + bias``."""
    import torch

    head = classification_head(model, len(scale))
    with torch.no_grad():
        a = torch.as_tensor(scale, dtype=head.weight.dtype, device=head.weight.device)
        b = torch.as_tensor(bias, dtype=head.bias.dtype, device=head.bias.device)
        head.weight.mul_(a[:, None])
        head.bias.mul_(a).add_(b)


def calibration_record(logits: np.ndarray, y: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                       labels: list[str]) -> dict[str, Any]:
    """What was fitted, and the validation log loss before and after, for the model card."""
    calibrated = logits * scale + bias
    return {
        "method": "platt",
        "fitted_on": "validation",
        "folded_into": "classification head weights",
        "validation_log_loss_before": log_loss(logits, y),
        "validation_log_loss_after": log_loss(calibrated, y),
        "per_label": {name: {"scale": float(a), "bias": float(b)}
                      for name, a, b in zip(labels, scale, bias, strict=True)},
    }


def calibrate_thresholds(tuned: dict[str, Any], scale: np.ndarray, bias: np.ndarray,
                         labels: list[str]) -> dict[str, Any]:
    """Map thresholds tuned on raw scores onto the calibrated scale: ``t -> sigmoid(a * logit(t) + b)``.

    The map is increasing, so ``raw >= t`` exactly when ``calibrated >= t'``: no decision changes.
    The raw thresholds are kept under ``raw_thresholds`` for reference.
    """
    out = dict(tuned)
    raw = dict(tuned["thresholds"])
    mapped = {}
    for name, a, b in zip(labels, scale, bias, strict=True):
        t = float(raw[name])
        value = sigmoid(a * np.log(t / (1.0 - t)) + b)
        mapped[name] = float(np.clip(value, 1e-6, 1.0 - 1e-6))  # thresholds must stay inside (0, 1)
    out["thresholds"] = mapped
    out["raw_thresholds"] = raw
    out["calibrated"] = True
    return out

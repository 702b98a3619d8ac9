"""All evaluation numbers for one set of predictions: local `evaluate` modules, bootstrap
confidence intervals and breakdowns by side field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.metrics import load_metric


def classification(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-label P/R/F1/support, averages, subset accuracy, Hamming loss, any-violation view."""
    metric = load_metric("multilabel_classification")
    return dict(metric.compute(predictions=np.asarray(y_pred, dtype=int).tolist(),
                               references=np.asarray(y_true, dtype=int).tolist(), label_names=list(labels)))


def ranking(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-label average precision (PR-AUC) and ROC-AUC."""
    metric = load_metric("multilabel_ranking")
    return dict(metric.compute(prediction_scores=np.asarray(probs, dtype=float).tolist(),
                               references=np.asarray(y_true, dtype=int).tolist(), label_names=list(labels)))


def calibration(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error per label and pooled, with reliability bins."""
    metric = load_metric("calibration_error")
    return dict(metric.compute(prediction_scores=np.asarray(probs, dtype=float).tolist(),
                               references=np.asarray(y_true, dtype=int).tolist(), label_names=list(labels),
                               n_bins=n_bins))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def bootstrap(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0,
              alpha: float = 0.05) -> dict[str, Any]:
    """Percentile bootstrap CIs (resampling examples) for micro-F1, macro-F1, any-violation F1
    and each label's F1."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    n = len(y)
    rng = np.random.default_rng(seed)
    micro, macro, anyv, per = [], [], [], []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yt, yp = y[idx], p[idx]
        tp = (yt & yp).sum(axis=0).astype(float)
        fp = ((1 - yt) & yp).sum(axis=0).astype(float)
        fn = (yt & (1 - yp)).sum(axis=0).astype(float)
        label_f1 = _f1(tp, fp, fn)
        per.append(label_f1)
        micro.append(float(_f1(tp.sum(), fp.sum(), fn.sum())))
        macro.append(float(label_f1.mean()))
        at, ap = yt.max(axis=1), yp.max(axis=1)
        anyv.append(float(_f1(np.array((at & ap).sum(), dtype=float), np.array(((1 - at) & ap).sum(), dtype=float),
                              np.array((at & (1 - ap)).sum(), dtype=float))))
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)

    def ci(values: Any) -> list[float]:
        return [float(v) for v in np.percentile(np.asarray(values), [lo, hi], axis=0)]

    per_arr = np.asarray(per)
    return {
        "n_boot": n_boot,
        "confidence": 1 - alpha,
        "micro_f1": ci(micro),
        "macro_f1": ci(macro),
        "any_violation_f1": ci(anyv),
        "per_label_f1": np.percentile(per_arr, [lo, hi], axis=0).T.tolist(),
    }


def breakdown(records: Sequence[dict[str, Any]], y_true: np.ndarray, y_pred: np.ndarray,
              field: str) -> dict[str, dict[str, Any]]:
    """Any-violation precision/recall/F1 and micro-F1 per value of a side field."""
    out: dict[str, dict[str, Any]] = {}
    values = [str(r.get(field) or "(kosong)") for r in records]
    for value in sorted(set(values)):
        mask = np.array([v == value for v in values])
        yt, yp = y_true[mask], y_pred[mask]
        at, ap = yt.max(axis=1), yp.max(axis=1)
        tp, fp, fn = float((at & ap).sum()), float(((1 - at) & ap).sum()), float((at & (1 - ap)).sum())
        ltp = float((yt & yp).sum())
        lfp = float(((1 - yt) & yp).sum())
        lfn = float((yt & (1 - yp)).sum())
        out[value] = {
            "n": int(mask.sum()),
            "positives": int(at.sum()),
            "flagged": int(ap.sum()),
            "any_violation_precision": tp / (tp + fp) if tp + fp else 0.0,
            "any_violation_recall": tp / (tp + fn) if tp + fn else 0.0,
            "any_violation_f1": float(_f1(np.array(tp), np.array(fp), np.array(fn))),
            "micro_f1": float(_f1(np.array(ltp), np.array(lfp), np.array(lfn))),
            "false_positive_rate": fp / max(1, int((1 - at).sum())),
        }
    return out


def full_report(records: Sequence[dict[str, Any]], y_true: np.ndarray, y_pred: np.ndarray,
                probs: np.ndarray | None, labels: Sequence[str], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Everything the harness reports for one system (model or baseline)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    out = classification(y_true, y_pred, labels)
    out["num_examples"] = len(y_true)
    if probs is not None:
        ranks = ranking(y_true, probs, labels)
        calib = calibration(y_true, probs, labels)
        for name in labels:
            out["per_label"][name].update(ranks["per_label"][name])
            out["per_label"][name]["ece"] = calib["per_label"][name]
        out["macro_average_precision"] = ranks["macro_average_precision"]
        out["macro_roc_auc"] = ranks["macro_roc_auc"]
        out["calibration"] = {k: calib[k] for k in ("overall_ece", "macro_ece", "reliability")}
    if n_boot:
        out["bootstrap"] = bootstrap(y_true, y_pred, n_boot=n_boot, seed=seed)
    out["by_jenis_teks"] = breakdown(records, y_true, y_pred, "jenis_teks")
    out["by_aktor_asn"] = breakdown(records, y_true, y_pred, "aktor_asn")
    return out

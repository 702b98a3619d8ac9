"""Plots of the evaluation harness and the data card (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.taxonomy import Taxonomy


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = 100) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return path


def _label_grid(n: int, cell: tuple[float, float], cols: int = 4) -> tuple[Any, list[Any]]:
    """A figure with one subplot per label (``cols`` per row); unused cells are hidden."""
    rows = int(np.ceil(n / cols))
    fig, axes = _plt().subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def per_label_f1(metrics: dict[str, Any], labels: Sequence[str], path: Path,
                 baseline: dict[str, Any] | None = None) -> Path:
    """Horizontal bars of each label's F1 with bootstrap 95 % CIs (and the baseline's F1)."""
    plt = _plt()
    f1 = np.array([metrics["per_label"][n]["f1"] for n in labels])
    ci = np.array(metrics.get("bootstrap", {}).get("per_label_f1") or [[v, v] for v in f1])
    err = np.vstack([f1 - ci[:, 0], ci[:, 1] - f1]).clip(min=0)
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    ax.barh(y, f1, xerr=err, color="#3b7dd8", alpha=0.85, capsize=3, label="model (95% CI)")
    if baseline is not None:
        ax.scatter([baseline["per_label"][n]["f1"] for n in labels], y, color="#d8553b", marker="D",
                   zorder=3, label="TF-IDF baseline")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title("Per-label F1 (test)")
    ax.legend(loc="lower right")
    return _save(fig, path, dpi=110)


def pr_curves(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """One precision-recall curve per label, average precision in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, axes = _label_grid(len(labels), (4, 3.2))
    for i, (name, ax) in enumerate(zip(labels, axes, strict=True)):
        if y_true[:, i].min() != y_true[:, i].max():
            p, r, _ = precision_recall_curve(y_true[:, i], probs[:, i])
            ap = average_precision_score(y_true[:, i], probs[:, i])
            ax.plot(r, p, color="#3b7dd8", label=f"AP {ap:.2f}")
            ax.legend(loc="lower left", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
    return _save(fig, path)


def reliability(calibration: dict[str, Any], path: Path) -> Path:
    """Reliability diagram of the pooled (example, label) probabilities."""
    plt = _plt()
    rel = calibration["reliability"]
    conf = [c for c in rel["confidence"] if c is not None]
    freq = [f for c, f in zip(rel["confidence"], rel["frequency"], strict=True) if c is not None]
    counts = [n for n in rel["count"] if n]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(conf, freq, "o-", color="#3b7dd8", label=f"model (ECE {calibration['overall_ece']:.3f})")
    for c, f, n in zip(conf, freq, counts, strict=True):
        ax.annotate(str(n), (c, f), fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Reliability (all labels pooled; n per bin)")
    ax.legend(loc="upper left")
    return _save(fig, path, dpi=110)


def confusion_matrices(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """Per-label 2x2 confusion matrices (``sklearn.metrics.multilabel_confusion_matrix``)."""
    from sklearn.metrics import multilabel_confusion_matrix

    mats = multilabel_confusion_matrix(y_true, y_pred)
    fig, axes = _label_grid(len(labels), (3.2, 2.9))
    for i, (name, ax) in enumerate(zip(labels, axes, strict=True)):
        ax.imshow(mats[i], cmap="Blues")
        for (r, c), v in np.ndenumerate(mats[i]):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=10,
                    color="white" if v > mats[i].max() / 2 else "black")
        ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
        ax.set_yticks([0, 1], ["gold 0", "gold 1"], fontsize=7)
        ax.set_title(name, fontsize=8)
    return _save(fig, path)


def cooccurrence(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """Label co-occurrence counts, gold beside predicted."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    for ax, y, title in ((axes[0], y_true, "gold"), (axes[1], y_pred, "predicted")):
        m = y.T @ y
        im = ax.imshow(m, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_title(f"label co-occurrence ({title})")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_dataset_stats(stats: dict[str, Any], taxonomy: Taxonomy, path: str | Path) -> Path:
    """Bar charts for the data card: positives per label, negatives per kind, registers."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    names = taxonomy.names
    axes[0].barh(names, [stats["per_label"][n] for n in names], color="#3b7dd8")
    axes[0].invert_yaxis()
    axes[0].set_title("positives per label")
    kinds = stats["negative_kinds"]
    axes[1].barh(list(kinds), list(kinds.values()), color="#7a7a7a")
    axes[1].invert_yaxis()
    axes[1].set_title("negatives per kind")
    reg = stats["register"]
    axes[2].barh(list(reg), list(reg.values()), color="#d8903b")
    axes[2].invert_yaxis()
    axes[2].set_title("texts per register")
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"dataset: {stats['total']} texts, {stats['negatives']} negatives, "
                 f"{stats['multi_label']} multi-label")
    return _save(fig, Path(path))

"""Multi-label classification metrics as a local `evaluate` module.

Loaded by path (``evaluate.load("training/metrics/multilabel_classification")``) so that it
works without the Hugging Face Hub. Computes, from 0/1 label matrices: per-label precision,
recall, F1 and support; micro, macro, weighted and samples averages; subset accuracy;
Hamming loss; and the *any-violation* binary view (a row is positive when any label is 1).
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of 0/1 lists, one per example, one entry per label.
    references: list of 0/1 lists, same shape as predictions.
    label_names: optional list of label names for the per-label entries.
Returns:
    dict with micro_f1, macro_f1, weighted_f1, samples_f1 (and the matching precision and
    recall), subset_accuracy, hamming_loss, any_violation_precision/recall/f1/support, and
    per_label: {name: {precision, recall, f1, support}}.
"""
_CITATION = "scikit-learn: Pedregosa et al., JMLR 12, 2011."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, predictions, references, label_names=None):
        y_pred = np.asarray(predictions, dtype=np.int64)
        y_true = np.asarray(references, dtype=np.int64)
        n_labels = y_true.shape[1]
        names = list(label_names) if label_names is not None else [str(i) for i in range(n_labels)]
        result = {}
        for average in ("micro", "macro", "weighted", "samples"):
            # For samples averaging, an example with no gold and no predicted label (a correctly
            # unflagged negative) scores 1, not 0.
            p, r, f, _ = precision_recall_fscore_support(
                y_true, y_pred, average=average, zero_division=1.0 if average == "samples" else 0.0
            )
            result[f"{average}_precision"] = float(p)
            result[f"{average}_recall"] = float(r)
            result[f"{average}_f1"] = float(f)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
        result["per_label"] = {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                   "support": int(s[i])}
            for i, name in enumerate(names)
        }
        result["subset_accuracy"] = float(accuracy_score(y_true, y_pred))
        result["hamming_loss"] = float(hamming_loss(y_true, y_pred))
        any_true = (y_true.sum(axis=1) > 0).astype(np.int64)
        any_pred = (y_pred.sum(axis=1) > 0).astype(np.int64)
        p, r, f, _ = precision_recall_fscore_support(
            any_true, any_pred, average="binary", zero_division=0
        )
        result["any_violation_precision"] = float(p)
        result["any_violation_recall"] = float(r)
        result["any_violation_f1"] = float(f)
        result["any_violation_support"] = int(any_true.sum())
        return result

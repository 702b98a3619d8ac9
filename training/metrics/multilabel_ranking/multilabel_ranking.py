"""Threshold-free ranking metrics per label as a local `evaluate` module.

Per-label average precision (area under the precision-recall curve) and ROC-AUC, with their
macro averages over labels that have both classes present.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    prediction_scores: list of float lists (probabilities), one per example and label.
    references: list of 0/1 lists, same shape.
    label_names: optional list of label names.
Returns:
    dict with per_label: {name: {average_precision, roc_auc}} (None when a label has only one
    class in the references), macro_average_precision and macro_roc_auc.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelRanking(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "prediction_scores": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, prediction_scores, references, label_names=None):
        scores = np.asarray(prediction_scores, dtype=np.float64)
        y_true = np.asarray(references, dtype=np.int64)
        names = list(label_names) if label_names is not None else [
            str(i) for i in range(y_true.shape[1])]
        per_label = {}
        aps, aucs = [], []
        for i, name in enumerate(names):
            col = y_true[:, i]
            if col.min() == col.max():
                per_label[name] = {"average_precision": None, "roc_auc": None}
                continue
            ap = float(average_precision_score(col, scores[:, i]))
            auc = float(roc_auc_score(col, scores[:, i]))
            per_label[name] = {"average_precision": ap, "roc_auc": auc}
            aps.append(ap)
            aucs.append(auc)
        return {
            "per_label": per_label,
            "macro_average_precision": float(np.mean(aps)) if aps else None,
            "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        }

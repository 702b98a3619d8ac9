"""Expected calibration error (ECE) of multi-label probabilities as a local `evaluate` module.

Each label is treated as a binary probability forecast. Scores are put into ``n_bins`` equal
width bins on [0, 1]; ECE is the support-weighted mean of |mean predicted probability -
observed frequency| over the bins. ``overall_ece`` pools every (example, label) pair.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    prediction_scores: list of float lists (probabilities), one per example and label.
    references: list of 0/1 lists, same shape.
    label_names: optional list of label names.
    n_bins: number of equal-width bins (default 10).
Returns:
    dict with per_label ECE, overall_ece (pooled), macro_ece (mean over labels) and
    reliability: {confidence, frequency, count} per bin for the pooled scores.
"""


def _ece(prob, truth, n_bins):
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1], right=False), 0, n_bins - 1)
    total, conf, freq, count = 0.0, [], [], []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        count.append(n)
        if n == 0:
            conf.append(None)
            freq.append(None)
            continue
        c, f = float(prob[mask].mean()), float(truth[mask].mean())
        conf.append(c)
        freq.append(f)
        total += n * abs(c - f)
    return total / max(len(prob), 1), {"confidence": conf, "frequency": freq, "count": count}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CalibrationError(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Naeini, Cooper & Hauskrecht, AAAI 2015.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "prediction_scores": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, prediction_scores, references, label_names=None, n_bins=10):
        scores = np.asarray(prediction_scores, dtype=np.float64)
        y_true = np.asarray(references, dtype=np.float64)
        names = list(label_names) if label_names is not None else [
            str(i) for i in range(y_true.shape[1])]
        per_label = {name: _ece(scores[:, i], y_true[:, i], n_bins)[0] for i, name in enumerate(names)}
        overall, reliability = _ece(scores.ravel(), y_true.ravel(), n_bins)
        return {
            "per_label": per_label,
            "overall_ece": overall,
            "macro_ece": float(np.mean(list(per_label.values()))),
            "reliability": reliability,
        }

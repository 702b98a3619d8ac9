"""TF-IDF (word and character n-grams) + one-vs-rest logistic regression baseline.

The fastest sanity check of the data and the bar the transformer has to clear. It is trained
on the same training split, with thresholds tuned on validation the same way as the model's,
and is never saved (scikit-learn models would need pickle); refitting takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.text import normalize_text
from training.thresholds import tune_thresholds


@dataclass
class TfidfBaseline:
    """Word 1-2-grams + character 2-5-grams (within word boundaries), balanced OvR LR."""

    C: float = 4.0
    max_word_features: int = 50_000
    max_char_features: int = 100_000
    seed: int = 0
    thresholds: np.ndarray | None = field(default=None, init=False)
    _pipeline: Any = field(default=None, init=False, repr=False)

    def _build(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import FeatureUnion, make_pipeline

        features = FeatureUnion([
            ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                     max_features=self.max_word_features)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                     max_features=self.max_char_features)),
        ])
        clf = OneVsRestClassifier(LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000,
                                                     random_state=self.seed))
        return make_pipeline(features, clf)

    def fit(self, texts: Sequence[str], y: np.ndarray) -> TfidfBaseline:
        """Fit on raw texts (normalised here) and a 0/1 label matrix."""
        y = np.asarray(y)
        missing = np.where(y.sum(axis=0) == 0)[0]
        if len(missing):
            raise ValueError(f"the training labels have no positive for label column(s) {missing.tolist()}")
        self._pipeline = self._build().fit([normalize_text(t) for t in texts], y)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, num_labels)`` probabilities."""
        if self._pipeline is None:
            raise RuntimeError("fit the baseline first")
        return np.asarray(self._pipeline.predict_proba([normalize_text(t) for t in texts]), dtype=np.float64)

    def tune(self, texts: Sequence[str], y: np.ndarray, labels: Sequence[str], **kwargs: Any) -> dict[str, Any]:
        """Tune per-label thresholds on validation data exactly like the transformer's."""
        tuned = tune_thresholds(np.asarray(y), self.predict_proba(texts), labels, **kwargs)
        self.thresholds = np.array([tuned["thresholds"][n] for n in labels])
        return tuned

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """0/1 predictions with the tuned thresholds (0.5 before tuning)."""
        probs = self.predict_proba(texts)
        t = self.thresholds if self.thresholds is not None else np.full(probs.shape[1], 0.5)
        return (probs >= t).astype(int)

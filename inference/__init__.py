"""Light inference for the ASN-neutrality classifier.

>>> from inference import Classifier
>>> clf = Classifier.from_pretrained("models/my-model")      # doctest: +SKIP
>>> clf.predict("Ayo coblos nomor 2!").labels                 # doctest: +SKIP

Importing this package never imports torch or the training code: the PyTorch backend is loaded
only when a model is loaded with ``backend="torch"`` (or ``"auto"`` without an ONNX export).
"""

from inference.classifier import Classifier, Prediction, predict
from inference.taxonomy import LabelInfo, Taxonomy, TaxonomyError, load_taxonomy
from inference.text import normalize_text

__version__ = "0.1.0"

__all__ = [
    "Classifier",
    "LabelInfo",
    "Prediction",
    "Taxonomy",
    "TaxonomyError",
    "__version__",
    "load_taxonomy",
    "normalize_text",
    "predict",
]

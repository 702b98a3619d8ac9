"""Model runners behind one small interface: ``logits(batch) -> ndarray``.

Each backend module imports its engine lazily, so importing this package needs neither torch
nor onnxruntime.
"""

from inference.backends.base import MODEL_INPUTS, Backend

__all__ = ["MODEL_INPUTS", "Backend"]

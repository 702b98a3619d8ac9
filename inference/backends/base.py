"""The interface every backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

#: The inputs a BERT-style classifier may take, in the order exported to ONNX.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Backend(Protocol):
    """Runs a batch of padded token windows through the model and returns raw logits."""

    #: short name used in logs and benchmarks, e.g. ``"torch"`` or ``"onnx-int8"``
    name: str
    #: the subset of :data:`MODEL_INPUTS` the model takes
    input_names: tuple[str, ...]
    #: ``"cpu"`` or a CUDA device
    device: str

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Return float32 logits of shape ``(batch, num_labels)`` for int64 inputs."""
        ...

    def outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output in one pass: ``"logits"`` and, for a model with auxiliary heads, one
        float32 array of shape ``(batch, num_classes)`` per task name (``"actor"``, ``"text_type"``)."""
        ...

"""PyTorch backend: a ``transformers`` sequence-classification model in eval mode."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from inference.backends.base import MODEL_INPUTS


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when a GPU is visible, else ``"cpu"``; check ``"cuda"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA GPU")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return device


class TorchBackend:
    """Wraps a loaded ``PreTrainedModel`` (from a directory or already in memory)."""

    def __init__(self, model: Any, device: str = "cpu", num_threads: int | None = None) -> None:
        import torch

        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        params = inspect.signature(self.model.forward).parameters
        self.input_names = tuple(name for name in MODEL_INPUTS if name in params)
        self.name = "torch" if self.device == "cpu" else f"torch-{self.device}"

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, device: str = "cpu", num_threads: int | None = None
    ) -> TorchBackend:
        """Load safetensors weights from a model directory (pickle files are refused)."""
        from transformers.utils import logging as hf_logging

        from inference.mean_pooling import load_sequence_classifier

        hf_logging.disable_progress_bar()
        model = load_sequence_classifier(str(model_dir))
        return cls(model, device=device, num_threads=num_threads)

    def outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from inference.auxiliary_heads import auxiliary_logits

        with torch.inference_mode():
            inputs = {name: torch.from_numpy(batch[name]).to(self.device) for name in self.input_names}
            out = {"logits": self.model(**inputs).logits}
            out.update(auxiliary_logits(self.model))
        return {name: value.float().cpu().numpy() for name, value in out.items()}

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.outputs(batch)["logits"]

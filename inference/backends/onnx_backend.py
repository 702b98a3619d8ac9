"""ONNX Runtime backend. Needs only ``onnxruntime`` and ``numpy``: it never imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxBackend:
    """Runs an exported ``model.onnx`` or ``model.int8.onnx`` with ONNX Runtime."""

    def __init__(
        self, onnx_path: str | Path, device: str = "cpu", num_threads: int | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "backend='onnx' needs onnxruntime: pip install 'netralitas-asn-classifier[onnx]'"
            ) from exc
        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ONNX file not found: {path}. Export it with "
                f"`python -m inference.export --model-dir {path.parent.parent} --quantize int8`."
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(
                    "device='cuda' needs onnxruntime-gpu; install it or use backend='torch'"
                )
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_name = self.session.get_outputs()[0].name
        #: every output; auxiliary heads are exported as ``<task>_logits`` after ``logits``
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.path = path
        self.device = "cuda" if providers[0] == "CUDAExecutionProvider" else "cpu"
        self.name = "onnx-int8" if path.name.endswith(".int8.onnx") else "onnx"

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: batch[name] for name in self.input_names}
        (out,) = self.session.run([self.output_name], feeds)
        return np.asarray(out, dtype=np.float32)

    def outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {name: batch[name] for name in self.input_names}
        values = self.session.run(self.output_names, feeds)
        return {("logits" if name == self.output_name else name.removesuffix("_logits")):
                np.asarray(value, dtype=np.float32) for name, value in zip(self.output_names, values, strict=True)}

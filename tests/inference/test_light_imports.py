"""The inference package stays light: no training code, no training libraries, no torch."""

from __future__ import annotations

import subprocess
import textwrap

from conftest import PY, python_env

HEAVY = ["training", "datasets", "sklearn", "evaluate", "torch", "accelerate", "pandas", "matplotlib"]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=python_env(), timeout=120)


def test_import_inference_does_not_import_training_or_heavy_libraries() -> None:
    result = run_python(f"""
        import sys
        import inference
        from inference import Classifier, Prediction, predict, load_taxonomy, normalize_text
        import inference.cli, inference.export, inference.tabular, inference.explain
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        print(",".join(loaded))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"inference imported: {result.stdout.strip()}"


def test_onnx_path_modules_import_with_torch_blocked() -> None:
    result = run_python("""
        import sys
        sys.modules["torch"] = None  # makes `import torch` fail, as if it were not installed
        import inference
        from inference.backends.onnx_backend import OnnxBackend
        from inference.classifier import Classifier
        from inference.windows import WindowTokenizer
        import onnxruntime
        print("ok", sys.modules["torch"] is None)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok True"

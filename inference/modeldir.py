"""The layout of a trained model directory and helpers to read it without torch.

A model directory is self-contained: Hugging Face files (``config.json``,
``model.safetensors``, ``tokenizer.json``...) plus this project's ``thresholds.json`` and a copy
of ``taxonomy.yaml``. Optional ONNX files live in ``onnx/``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.taxonomy import TAXONOMY_FILENAME, Taxonomy, load_taxonomy

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
THRESHOLDS_FILE = "thresholds.json"
METRICS_FILE = "metrics.json"
ONNX_DIR = "onnx"
ONNX_FP32_FILE = f"{ONNX_DIR}/model.onnx"
ONNX_INT8_FILE = f"{ONNX_DIR}/model.int8.onnx"

DEFAULT_MAX_LENGTH = 256
DEFAULT_STRIDE = 64
DEFAULT_THRESHOLD = 0.5

_COMMON_FILES = (CONFIG_FILE, TOKENIZER_FILE, THRESHOLDS_FILE, TAXONOMY_FILENAME)


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs from a model directory, read without importing torch."""

    path: Path
    taxonomy: Taxonomy
    thresholds: dict[str, float]
    max_length: int
    stride: int
    model_type: str
    config: dict[str, Any]


def check_model_dir(model_dir: str | Path, need: tuple[str, ...] = ()) -> Path:
    """Raise ``FileNotFoundError`` naming every missing file of a model directory.

    ``need`` lists extra files required by the chosen backend (e.g. the weights file).
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model directory not found: {path}. Train one with `python -m training.train` "
            "or pass the path of a downloaded model."
        )
    missing = [name for name in (*_COMMON_FILES, *need) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"model directory {path} is incomplete; missing: {', '.join(missing)}. "
            "A model directory written by `python -m training.train` has all of them."
        )
    return path


def read_json(path: Path) -> Any:
    """Read a JSON file, turning a parse error into a ``ValueError`` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc})") from exc


def read_model_info(model_dir: str | Path) -> ModelInfo:
    """Read config, taxonomy and thresholds of a model directory and check they agree."""
    path = check_model_dir(model_dir)
    config = read_json(path / CONFIG_FILE)
    taxonomy = load_taxonomy(path / TAXONOMY_FILENAME)
    id2label = config.get("id2label") or {}
    config_labels = [id2label[k] for k in sorted(id2label, key=int)]
    if config_labels != taxonomy.names:
        raise ValueError(
            f"{path / CONFIG_FILE}: id2label {config_labels} does not match the labels of "
            f"{path / TAXONOMY_FILENAME} {taxonomy.names}"
        )
    raw_thresholds = read_json(path / THRESHOLDS_FILE)
    per_label = raw_thresholds.get("thresholds", {}) if isinstance(raw_thresholds, dict) else {}
    unknown = set(per_label) - set(taxonomy.names)
    if unknown:
        raise ValueError(f"{path / THRESHOLDS_FILE}: unknown label(s) {sorted(unknown)}")
    default = float(raw_thresholds.get("default", DEFAULT_THRESHOLD))
    thresholds = {name: float(per_label.get(name, default)) for name in taxonomy.names}
    return ModelInfo(
        path=path,
        taxonomy=taxonomy,
        thresholds=thresholds,
        max_length=int(config.get("inference_max_length", DEFAULT_MAX_LENGTH)),
        stride=int(config.get("inference_stride", DEFAULT_STRIDE)),
        model_type=str(config.get("model_type", "")),
        config=config,
    )


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically: a temporary file in the same folder, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically with stable, readable formatting."""
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")

"""Shared fixtures: a tiny BERT built in the test session and a model directory trained on
the hand-written fixture with the project's real training script."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINI_DATA = FIXTURES / "mini"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

#: training flags for the tiny model (small windows so long-text tests stay cheap)
TINY_TRAIN_FLAGS = [
    "--data-dir", str(MINI_DATA),
    "--max-length", "64",
    "--stride", "16",
    "--num-train-epochs", "40",
    "--learning-rate", "5e-3",
    "--load-best-model-at-end", "false",
    "--per-device-train-batch-size", "8",
    "--per-device-eval-batch-size", "16",
    "--warmup-steps", "0",
    "--early-stopping-patience", "0",
    "--logging-strategy", "epoch",
    "--save-total-limit", "1",
    "--disable-tqdm", "true",
    "--seed", "0",
    "--calibration-min-examples", "1",  # the fixture's validation split has only 8 texts
]


def fixture_texts() -> list[str]:
    texts = []
    for split in ("train", "validation", "test"):
        for line in (MINI_DATA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["text"])
    return texts


def build_tiny_backbone(target: Path) -> Path:
    """A randomly initialised 2-layer BERT with a vocabulary built from the fixture texts."""
    from training.tiny import build_tiny_backbone as build

    return build(target, fixture_texts())


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-backbone"))


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    """A model directory written by ``training.train`` from the tiny backbone (trained once)."""
    from training.train import main

    out = tmp_path_factory.mktemp("tiny-model") / "model"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), *TINY_TRAIN_FLAGS])
    return out


@pytest.fixture()
def model_copy(tmp_path: Path, trained_model_dir: Path) -> Path:
    """A private copy of the trained model directory that a test may modify."""
    import shutil

    target = tmp_path / "model"
    shutil.copytree(trained_model_dir, target)
    return target


def python_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: this interpreter's path plus the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


PY = sys.executable

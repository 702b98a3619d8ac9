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
]


def fixture_texts() -> list[str]:
    texts = []
    for split in ("train", "validation", "test"):
        for line in (MINI_DATA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["text"])
    return texts


def build_tiny_backbone(target: Path) -> Path:
    """A randomly initialised 2-layer BERT and a WordPiece tokenizer trained on the fixture."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from inference.text import normalize_text

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    texts = fixture_texts()
    words: set[str] = set()
    for text in texts + [normalize_text(t) for t in texts]:
        words.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    # A deterministic vocabulary (a trained WordPiece vocabulary orders ties differently from
    # run to run): whole words, single characters and their continuation pieces.
    vocab_list = special + sorted(words) + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab_list)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(target))
    fast.save_pretrained(str(target))
    return target


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

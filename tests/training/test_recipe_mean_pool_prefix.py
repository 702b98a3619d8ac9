"""The e5 recipe on the tiny BERT: mean pooling, an input prefix, LP-FT, frozen word embeddings
and every window as a training row. The prefix must reach every path that scores a text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_FLAGS

from inference import Classifier
from inference.text import normalize_text

PREFIX = "laporan: "  # a word of the tiny vocabulary, so its ids are not [UNK]
LONG = ("Kepala dinas hadir di lapangan. " * 40) + "ASN ikut deklarasi paslon nomor dua."


@pytest.fixture(scope="module")
def recipe_model(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    from training.train import main

    out = tmp_path_factory.mktemp("recipe") / "model"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), *TINY_TRAIN_FLAGS,
          "--num-train-epochs", "3", "--max-length", "24", "--stride", "4",
          "--pooling", "mean", "--input-prefix", PREFIX,
          "--freeze-word-embeddings", "true", "--train-on-all-windows", "true", "--linear-probe-init", "true"])
    return out


def _prefix_ids(model_dir: Path) -> list[int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids = tok.encode(PREFIX.strip(), add_special_tokens=False).ids
    assert tok.token_to_id("[UNK]") not in ids
    return ids


def test_directory_records_the_recipe_and_the_head(recipe_model: Path, tiny_backbone: Path) -> None:
    from safetensors.numpy import load_file

    config = json.loads((recipe_model / "config.json").read_text("utf-8"))
    assert config["pooling"] == "mean" and config["input_prefix"] == PREFIX
    assert config["architectures"] == ["BertForMeanPooledSequenceClassification"]
    state = load_file(str(recipe_model / "model.safetensors"))
    assert not [k for k in state if "pooler" in k]
    before = load_file(str(tiny_backbone / "model.safetensors"))["embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(state["bert.embeddings.word_embeddings.weight"], before)  # frozen
    assert not np.allclose(state["bert.encoder.layer.0.attention.self.query.weight"],
                           load_file(str(tiny_backbone / "model.safetensors"))[
                               "encoder.layer.0.attention.self.query.weight"])  # the rest trained
    train = json.loads((recipe_model / "metrics.json").read_text("utf-8"))["train"]
    assert train["train_rows"] > train_texts_count() and train["frozen_word_embedding_parameters"] > 0
    assert {"validation", "test", "C"} <= set(train["linear_probe"])


def train_texts_count() -> int:
    from conftest import MINI_DATA

    return len((MINI_DATA / "train.jsonl").read_text("utf-8").splitlines())


def test_every_window_and_every_tokenizer_carries_the_prefix(recipe_model: Path) -> None:
    from transformers import AutoTokenizer

    prefix = _prefix_ids(recipe_model)
    clf = Classifier.from_pretrained(recipe_model, backend="torch")
    windows = clf.tokenizer.windows([normalize_text(LONG)])
    assert len(windows) > 2
    for window in windows:  # [CLS] prefix ... [SEP] in every window, not only the first
        assert window.input_ids[1:1 + len(prefix)] == prefix
    hf = AutoTokenizer.from_pretrained(str(recipe_model))  # what a plain transformers user gets
    text = normalize_text("Camat ikut kampanye")
    assert hf(text)["input_ids"] == clf.tokenizer.windows([text])[0].input_ids


def test_torch_onnx_and_mean_pooling_agree(recipe_model: Path, tmp_path: Path) -> None:
    """The ONNX graph contains the same pooling and sees the same prefixed ids as PyTorch."""
    from inference.export import export_model

    model = tmp_path / "m"
    shutil.copytree(recipe_model, model)
    export_model(model, quantize=None, check_limit=20)
    texts = [LONG, "Pak lurah pakai kaos paslon", "Sosialisasi netralitas ASN di aula"]
    torch_scores = [p.scores for p in Classifier.from_pretrained(model, backend="torch").predict(texts)]
    onnx_scores = [p.scores for p in Classifier.from_pretrained(model, backend="onnx").predict(texts)]
    for a, b in zip(torch_scores, onnx_scores, strict=True):
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-4)


def test_a_directory_whose_tokenizer_lost_the_prefix_is_refused(recipe_model: Path, tiny_backbone: Path,
                                                               tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(recipe_model, model)
    shutil.copy(tiny_backbone / "tokenizer.json", model / "tokenizer.json")  # prefix-less tokenizer
    with pytest.raises(ValueError, match="input prefix 'laporan: '"):
        Classifier.from_pretrained(model, backend="torch")


def test_mean_pooling_ignores_padding() -> None:
    import torch

    from inference.mean_pooling import mean_pool

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_linear_probe_cli_names_a_missing_backbone(tmp_path: Path) -> None:
    from training.linear_probe import main

    with pytest.raises(SystemExit, match=r"error: .*does not exist"):
        main(["--model-name-or-path", str(tmp_path / "no" / "such" / "model")])

"""Platt scaling: the fit recovers known parameters, folding changes the logits exactly as
intended, and a trained model directory carries calibrated scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA

from inference import Classifier
from training.calibration import calibrate_thresholds, fit_platt, fold_into_head, log_loss

TEXTS = [json.loads(line)["text"] for line in (MINI_DATA / "validation.jsonl").read_text("utf-8").splitlines()]


def test_fit_recovers_the_scale_and_bias_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 4.0, size=(20000, 2))
    true_scale, true_bias = np.array([0.4, 1.5]), np.array([-0.5, 1.0])
    y = (rng.random(logits.shape) < 1 / (1 + np.exp(-(logits * true_scale + true_bias)))).astype(int)
    scale, bias = fit_platt(logits, y)
    assert scale == pytest.approx(true_scale, abs=0.06)
    assert bias == pytest.approx(true_bias, abs=0.1)
    assert log_loss(logits * scale + bias, y) < log_loss(logits, y)


def test_fit_keeps_raw_scores_where_it_cannot_or_must_not_rescale() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, size=(500, 3))
    y = np.zeros_like(logits, dtype=int)  # label 0: no positives at all
    y[:4, 0] = 1  # (four are too few to fit two parameters)
    y[:, 1] = (logits[:, 1] < 0).astype(int)  # label 1: the scores rank it backwards
    y[:, 2] = (logits[:, 2] > 0).astype(int)
    scale, bias = fit_platt(logits, y)
    assert (scale[:2], bias[:2]) == (pytest.approx([1.0, 1.0]), pytest.approx([0.0, 0.0]))
    assert scale[2] > 1.0  # perfectly separable: sharpen, bounded by the L2 penalty
    with pytest.raises(ValueError, match="finite"):
        fit_platt(np.full((2, 1), -np.inf), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="same 2-D shape"):
        fit_platt(np.zeros((3, 2)), np.zeros((3, 1)))


def test_mapped_thresholds_change_no_decision() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(0.0, 3.0, size=(5000, 3))
    scale, bias = np.array([0.3, 1.0, 2.5]), np.array([-1.0, 0.0, 0.7])
    tuned = {"thresholds": {"a": 0.76, "b": 0.2, "c": 0.5}, "floor": 0.2}
    mapped = calibrate_thresholds(tuned, scale, bias, ["a", "b", "c"])
    raw_t = np.array([0.76, 0.2, 0.5])
    new_t = np.array([mapped["thresholds"][k] for k in "abc"])
    raw_decisions = 1 / (1 + np.exp(-logits)) >= raw_t
    new_decisions = 1 / (1 + np.exp(-(logits * scale + bias))) >= new_t
    assert (raw_decisions == new_decisions).all()
    assert mapped["raw_thresholds"] == tuned["thresholds"] and mapped["calibrated"] is True
    assert mapped["thresholds"]["b"] == pytest.approx(0.2)  # scale 1, bias 0: unchanged


def test_folding_turns_logits_into_scale_times_logits_plus_bias(tiny_backbone: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=12).eval()
    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    batch = tok(TEXTS[:4], padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits.numpy()
    scale, bias = np.linspace(0.2, 2.0, 12), np.linspace(-1.0, 1.0, 12)
    fold_into_head(model, scale, bias)
    with torch.no_grad():
        after = model(**batch).logits.numpy()
    np.testing.assert_allclose(after, before * scale + bias, rtol=1e-5, atol=1e-5)


def test_trained_model_carries_calibrated_scores(trained_model_dir: Path) -> None:
    metrics = json.loads((trained_model_dir / "metrics.json").read_text("utf-8"))
    record = metrics["train"]["calibration"]
    assert record["method"] == "platt" and len(record["per_label"]) == 12
    # the fit minimises the validation log loss, so it cannot be worse than no calibration
    assert record["validation_log_loss_after"] <= record["validation_log_loss_before"] + 1e-6
    assert 0.0 <= metrics["validation"]["calibration"]["overall_ece"] <= 1.0
    assert "Platt scaling" in (trained_model_dir / "README.md").read_text("utf-8")
    thresholds = json.loads((trained_model_dir / "thresholds.json").read_text("utf-8"))
    assert thresholds["calibrated"] is True and set(thresholds["raw_thresholds"]) == set(thresholds["thresholds"])

    clf = Classifier.from_pretrained(trained_model_dir, backend="torch")
    logits = clf.predict_logits([*TEXTS, "   "])
    probs = clf.predict_proba([*TEXTS, "   "])
    assert logits.shape == (len(TEXTS) + 1, 12) and np.isneginf(logits[-1]).all()
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)
    with pytest.raises(ValueError, match="single string"):
        clf.predict_logits("satu teks")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        clf.predict_logits(TEXTS, batch_size=0)
    with pytest.raises(ValueError, match=r"texts\[1\] is None"):
        clf.predict_logits([TEXTS[0], None])  # type: ignore[list-item]


def test_calibration_changes_scores_but_no_decision(trained_model_dir: Path, tiny_backbone: Path,
                                                     tmp_path: Path) -> None:
    from conftest import TINY_TRAIN_FLAGS

    from training.train import main

    raw_dir = tmp_path / "uncalibrated"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(raw_dir), *TINY_TRAIN_FLAGS,
          "--calibrate", "false"])
    assert json.loads((raw_dir / "metrics.json").read_text("utf-8"))["train"]["calibration"] is None
    texts = [json.loads(line)["text"] for split in ("train", "validation", "test")
             for line in (MINI_DATA / f"{split}.jsonl").read_text("utf-8").splitlines()]
    raw = Classifier.from_pretrained(raw_dir, backend="torch").predict(texts)
    calibrated = Classifier.from_pretrained(trained_model_dir, backend="torch").predict(texts)
    raw_logits = Classifier.from_pretrained(raw_dir, backend="torch").predict_logits(texts)
    raw_t = json.loads((raw_dir / "thresholds.json").read_text("utf-8"))["thresholds"]
    cut = np.log(np.array(list(raw_t.values())) / (1 - np.array(list(raw_t.values()))))
    clear = np.abs(raw_logits - cut) > 1e-3  # closer than float32 rounding of the folded weights: a tie
    names = list(raw_t)
    for r, c, ok in zip(raw, calibrated, clear, strict=True):
        assert [n for n, k in zip(names, ok, strict=True) if k and n in r.labels] == \
            [n for n, k in zip(names, ok, strict=True) if k and n in c.labels]
    assert any(abs(r.scores[k] - c.scores[k]) > 1e-3 for r, c in zip(raw, calibrated, strict=True) for k in r.scores)

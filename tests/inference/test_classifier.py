"""Classifier behaviour on a tiny model really trained by training.train."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA

from inference import Classifier, Prediction, predict
from inference.classifier import EMPTY_TEXT_WARNING

TRAIN_ROWS = [json.loads(line) for line in (MINI_DATA / "train.jsonl").read_text("utf-8").splitlines()]
TEXTS = [r["text"] for r in TRAIN_ROWS]


@pytest.fixture(scope="module")
def clf(trained_model_dir: Path) -> Classifier:
    return Classifier.from_pretrained(trained_model_dir, backend="torch", device="cpu")


def test_prediction_surface(clf: Classifier) -> None:
    preds = clf.predict(TEXTS[:3], batch_size=2)
    assert isinstance(preds, list) and len(preds) == 3
    p = preds[0]
    assert isinstance(p, Prediction)
    assert set(p.scores) == set(clf.labels) and len(p.scores) == 12
    assert all(0.0 <= s <= 1.0 for s in p.scores.values())
    assert p.labels == [n for n in clf.labels if p.scores[n] >= clf.thresholds[n]]
    assert p.flagged == bool(p.labels)
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {"labels", "flagged", "scores", "warning", "num_windows", "actor", "text_type"}
    assert d["actor"] is None and d["text_type"] is None  # a model trained without auxiliary heads


def test_single_string_gives_single_prediction_equal_to_list_entry(clf: Classifier) -> None:
    one = clf.predict(TEXTS[4])
    many = clf.predict(TEXTS[:6])
    assert isinstance(one, Prediction)
    assert one.scores == pytest.approx(many[4].scores, abs=1e-5)


def test_order_is_preserved_with_mixed_lengths(clf: Classifier) -> None:
    long_text = " ".join(TEXTS)  # several windows
    mixed = [TEXTS[0], long_text, "ok", TEXTS[7], TEXTS[14] * 3, TEXTS[2]]
    batched = clf.predict(mixed, batch_size=2)
    singly = [clf.predict(t) for t in mixed]
    for a, b in zip(batched, singly, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
        assert a.labels == b.labels
    assert batched[1].num_windows > 1


def record_batch_shapes(clf: Classifier, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Wrap the backend so every forward pass records its (batch, sequence) shape."""
    shapes: list[tuple[int, int]] = []
    original = clf.backend.logits

    def spy(batch: dict[str, np.ndarray]) -> np.ndarray:
        shapes.append(batch["input_ids"].shape)
        return original(batch)

    monkeypatch.setattr(clf.backend, "logits", spy)
    return shapes


def test_batches_never_exceed_batch_size(clf: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = record_batch_shapes(clf, monkeypatch)
    clf.predict(TEXTS * 5, batch_size=8)
    sizes = [b for b, _ in shapes]
    assert max(sizes) <= 8 and sum(sizes) >= len(TEXTS) * 5


def test_padding_is_per_batch_and_sorted_by_length(clf: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = record_batch_shapes(clf, monkeypatch)
    clf.predict(["ya", TEXTS[0], "ok", TEXTS[15], "oke sip"], batch_size=3)
    widths = [w for _, w in shapes]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_long_text_violation_after_600_tokens_is_found(clf: Classifier) -> None:
    from inference.text import normalize_text

    neutral_words = ["pagi", "ini", "warga", "kerja", "bakti", "membersihkan", "selokan", "lalu", "minum",
                     "teh", "bersama", "di", "pos", "ronda"]
    filler = " ".join(neutral_words[i % len(neutral_words)] for i in range(620))
    assert clf.tokenizer.count_tokens([filler])[0] >= 600
    thresholds = np.array([clf.thresholds[n] for n in clf.labels])

    def window_labels(window) -> set[str]:
        probs = 1 / (1 + np.exp(-clf._aggregate([window], 1, batch_size=1)[0][0]))
        return {n for n, p, t in zip(clf.labels, probs, thresholds, strict=True) if p >= t}

    found = []
    for text in TEXTS:
        windows = clf.tokenizer.windows([normalize_text(filler + " " + text)])
        found += [(text, n) for n in window_labels(windows[-1]) - window_labels(windows[0])]
    assert found, "the tiny model should fire a label on the window holding a training sentence"
    sentence, label = found[0]
    combined = clf.predict(filler + " " + sentence)
    assert combined.num_windows > 10
    # truncation to the first window (filler only) would have missed it; windowing finds it
    assert label in combined.labels


def test_threshold_override_float_and_dict(clf: Classifier, trained_model_dir: Path) -> None:
    text = TEXTS[5]
    everything = clf.predict(text, threshold=0.0001)
    assert everything.labels == clf.labels
    nothing = clf.predict(text, threshold=0.9999)
    assert nothing.labels == [] and not nothing.flagged
    only = clf.predict(text, threshold={n: 0.9999 for n in clf.labels} | {"tim_pemenangan": 0.0001})
    assert only.labels == ["tim_pemenangan"]
    loaded = Classifier.from_pretrained(trained_model_dir, backend="torch", threshold=0.0001)
    assert loaded.predict(text).labels == clf.labels
    with pytest.raises(ValueError, match="unknown label"):
        clf.predict(text, threshold={"bukan_label": 0.3})
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        clf.predict(text, threshold=1.5)


def test_thresholds_come_from_thresholds_json(model_copy: Path) -> None:
    data = json.loads((model_copy / "thresholds.json").read_text("utf-8"))
    data["thresholds"]["kampanye_medsos"] = 0.77
    (model_copy / "thresholds.json").write_text(json.dumps(data), "utf-8")
    assert Classifier.from_pretrained(model_copy, backend="torch").thresholds["kampanye_medsos"] == pytest.approx(0.77)


def test_empty_and_whitespace_strings_give_a_warning_not_a_crash(clf: Classifier) -> None:
    preds = clf.predict(["", "   \n\t", TEXTS[0]])
    for p in preds[:2]:
        assert p.labels == [] and not p.flagged
        assert p.warning == EMPTY_TEXT_WARNING
    assert preds[2].warning is None


@pytest.mark.parametrize(("bad", "message"), [
    ([TEXTS[0], None], r"texts\[1\] is None"),
    ([TEXTS[0], "ok", 42], r"texts\[2\] is a int"),
    ([b"bytes"], r"texts\[0\] is a bytes"),
    (None, "must be a string or a list of strings"),
])
def test_bad_inputs_raise_value_error_naming_the_item(clf: Classifier, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clf.predict(bad)  # type: ignore[arg-type]


def test_missing_or_incomplete_model_directory(tmp_path: Path, model_copy: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        Classifier.from_pretrained(tmp_path / "nope")
    (model_copy / "thresholds.json").unlink()
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing: tokenizer\.json, thresholds\.json"):
        Classifier.from_pretrained(model_copy)


def test_missing_weights_named_for_torch_backend(model_copy: Path) -> None:
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing: model\.safetensors"):
        Classifier.from_pretrained(model_copy, backend="torch")


def test_taxonomy_mismatch_is_detected(model_copy: Path) -> None:
    config = json.loads((model_copy / "config.json").read_text("utf-8"))
    config["id2label"]["0"] = "something_else"
    (model_copy / "config.json").write_text(json.dumps(config), "utf-8")
    with pytest.raises(ValueError, match="does not match the labels"):
        Classifier.from_pretrained(model_copy)


def test_predict_iter_streams_a_generator_in_order(clf: Classifier) -> None:
    def gen():
        yield from TEXTS

    streamed = list(clf.predict_iter(gen(), batch_size=4, chunk_size=5))
    assert len(streamed) == len(TEXTS)
    direct = clf.predict(TEXTS)
    for a, b in zip(streamed, direct, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_predict_iter_consumes_lazily(clf: Classifier) -> None:
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield TEXTS[i % len(TEXTS)]

    it = clf.predict_iter(gen(), batch_size=4, chunk_size=16)
    first = next(it)
    assert isinstance(first, Prediction)
    assert consumed <= 16 + 1


def test_convenience_predict_caches_the_classifier(trained_model_dir: Path) -> None:
    from inference import classifier as module

    module._CACHE.clear()
    a = predict(TEXTS[:2], model=trained_model_dir, backend="torch")
    b = predict(TEXTS[0], model=str(trained_model_dir), backend="torch")
    assert len(module._CACHE) == 1
    assert isinstance(a, list) and isinstance(b, Prediction)
    assert a[0].scores == pytest.approx(b.scores, abs=1e-6)


def test_explain_returns_weighted_words_for_fired_labels(clf: Classifier) -> None:
    text = next(t for t, p in zip(TEXTS, clf.predict(TEXTS), strict=True) if p.labels)
    exp = clf.explain(text)
    assert exp.labels == clf.predict(text).labels
    for label in exp.labels:
        words = exp.words[label]
        assert [w.text for w in words] == text_units(text)
        top = exp.top(label, 3)
        assert top[0].weight >= top[-1].weight
        # the reported weight is the real score drop when the word is removed
        w = top[0]
        units = [x.text for x in words]
        without = " ".join(units[:w.position] + units[w.position + 1:])
        assert exp.scores[label] - clf.predict(without).scores[label] == pytest.approx(w.weight, abs=1e-4)
    assert "<span" in exp.to_html(exp.labels[0])
    named = clf.explain(text, label="keanggotaan_parpol")
    assert named.labels == ["keanggotaan_parpol"]
    with pytest.raises(ValueError, match="unknown label"):
        clf.explain(text, label="nope")


def text_units(text: str) -> list[str]:
    from inference.text import normalize_text

    return normalize_text(text).split()


def test_moved_model_directory_needs_nothing_but_itself(tmp_path: Path, trained_model_dir: Path) -> None:
    target = tmp_path / "elsewhere"
    shutil.copytree(trained_model_dir, target)
    clf = Classifier.from_pretrained(target, backend="torch")
    assert clf.taxonomy.source == str(target / "taxonomy.yaml")


def test_token_budget_caps_padded_tokens_per_forward_pass(trained_model_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clf = Classifier.from_pretrained(trained_model_dir, backend="torch", max_batch_tokens=96)
    shapes = record_batch_shapes(clf, monkeypatch)
    long_text = " ".join(TEXTS)
    preds = clf.predict([*TEXTS, long_text, "ok"], batch_size=32)
    assert all(b * w <= 96 or b == 1 for b, w in shapes)
    assert max(b for b, _ in shapes) > 1  # short texts still share a batch
    unbounded = Classifier.from_pretrained(trained_model_dir, backend="torch", max_batch_tokens=None)
    for a, b in zip(preds, unbounded.predict([*TEXTS, long_text, "ok"], batch_size=32), strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert Classifier.from_pretrained(trained_model_dir, backend="torch", device="cpu").max_batch_tokens == 512

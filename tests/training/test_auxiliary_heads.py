"""Auxiliary heads (actor, text type): trained with the labels, saved beside the violation
model, returned by every inference path (Classifier, CLI, ONNX, the Ray actor)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MINI_DATA, TINY_TRAIN_FLAGS

from inference import Classifier
from inference.auxiliary import ACTOR_CLASSES, AUXILIARY_WEIGHTS_FILE, TEXT_TYPE_CLASSES

TRAIN = [json.loads(line) for line in (MINI_DATA / "train.jsonl").read_text("utf-8").splitlines()]
TEXTS = [r["text"] for r in TRAIN]


@pytest.fixture(scope="module")
def aux_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    """The tiny backbone trained with both auxiliary losses by the real training script."""
    from training.train import main

    out = tmp_path_factory.mktemp("aux-model") / "model"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), *TINY_TRAIN_FLAGS,
          "--actor-loss-weight", "1.0", "--text-type-loss-weight", "1.0"])
    return out


def test_heads_are_saved_beside_the_violation_model_and_described(aux_model_dir: Path) -> None:
    from safetensors import safe_open

    config = json.loads((aux_model_dir / "config.json").read_text("utf-8"))
    tasks = {t["name"]: t for t in config["auxiliary_heads"]["tasks"]}
    assert tasks["actor"]["classes"] == list(ACTOR_CLASSES) and tasks["actor"]["field"] == "aktor_asn"
    assert tasks["text_type"]["classes"] == list(TEXT_TYPE_CLASSES) and tasks["text_type"]["loss_weight"] == 1.0
    with safe_open(str(aux_model_dir / "model.safetensors"), "pt") as f:
        keys = list(f.keys())  # safe_open objects are not iterable
    assert keys and not [k for k in keys if "auxiliary" in k], "the heads must not sit inside model.safetensors"
    with safe_open(str(aux_model_dir / AUXILIARY_WEIGHTS_FILE), "pt") as f:
        shapes = {k: tuple(f.get_tensor(k).shape) for k in f.keys()}  # noqa: SIM118
    hidden = config["hidden_size"]
    assert shapes["heads.actor.weight"] == (len(ACTOR_CLASSES), hidden)
    assert shapes["heads.text_type.weight"] == (len(TEXT_TYPE_CLASSES), hidden)
    assert not list(aux_model_dir.glob("*.bin")) and not list(aux_model_dir.glob("*.pkl"))


def test_heads_learn_the_side_fields(aux_model_dir: Path) -> None:
    """After training, the heads reproduce the training texts' side fields far above the
    majority class (an untrained or disconnected head would not)."""
    from training.auxiliary_training import majority_accuracy

    clf = Classifier.from_pretrained(aux_model_dir, backend="torch")
    preds = clf.predict(TEXTS)
    for name, field in (("actor", "aktor_asn"), ("text_type", "jenis_teks")):
        acc = np.mean([getattr(p, name).label == r[field] for p, r in zip(preds, TRAIN, strict=True)])
        floor = majority_accuracy(TRAIN, clf.auxiliary_tasks[0 if name == "actor" else 1])
        assert acc >= max(0.8, floor + 0.2), f"{name}: accuracy {acc:.2f} vs majority {floor:.2f}"
    metrics = json.loads((aux_model_dir / "metrics.json").read_text("utf-8"))
    for split in ("validation", "test"):
        entry = metrics[split]["auxiliary"]["actor"]
        assert 0 <= entry["accuracy"] <= 1 and len(entry["confusion_matrix"]) == len(ACTOR_CLASSES)
        assert sum(map(sum, entry["confusion_matrix"])) == entry["num_examples"]
    assert metrics["train"]["auxiliary_loss_weights"] == {"actor": 1.0, "text_type": 1.0}


def test_prediction_carries_both_outputs_as_probabilities(aux_model_dir: Path) -> None:
    clf = Classifier.from_pretrained(aux_model_dir, backend="torch")
    pred, empty = clf.predict(["Camat ikut deklarasi paslon nomor 2 di lapangan", "   "])
    for aux, classes in ((pred.actor, ACTOR_CLASSES), (pred.text_type, TEXT_TYPE_CLASSES)):
        assert aux is not None and list(aux.scores) == list(classes)
        assert sum(aux.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert aux.label == max(aux.scores, key=aux.scores.__getitem__) and aux.score == aux.scores[aux.label]
    as_dict = pred.to_dict()
    assert as_dict["actor"]["label"] == pred.actor.label and as_dict["text_type"]["scores"] == pred.text_type.scores
    json.dumps(as_dict)
    assert empty.actor is None and empty.text_type is None and empty.to_dict()["actor"] is None


def test_long_texts_average_the_window_probabilities(aux_model_dir: Path) -> None:
    from inference.auxiliary import softmax
    from inference.text import normalize_text

    clf = Classifier.from_pretrained(aux_model_dir, backend="torch")
    text = " ".join(TEXTS[:8])
    windows = clf.tokenizer.windows([normalize_text(text)])
    assert len(windows) > 1
    per_window = [softmax(clf.backend.outputs(clf.tokenizer.pad([w]))["actor"])[0] for w in windows]
    got = clf.predict(text).actor
    assert list(got.scores.values()) == pytest.approx(np.mean(per_window, axis=0).tolist(), abs=1e-5)


def test_plain_transformers_still_loads_the_violation_head(aux_model_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(aux_model_dir))
    assert model.config.num_labels == 12 and not hasattr(model, "auxiliary_heads")


def test_model_without_heads_loads_with_none(trained_model_dir: Path) -> None:
    clf = Classifier.from_pretrained(trained_model_dir, backend="torch")
    assert clf.auxiliary_tasks == []
    pred = clf.predict("Ayo ke TPS tanggal 27 November")
    assert pred.actor is None and pred.text_type is None


def test_onnx_export_has_every_head_in_one_graph_and_checks_their_drift(aux_model_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from inference.export import main

    target = tmp_path / "model"
    shutil.copytree(aux_model_dir, target)
    assert main(["--model-dir", str(target), "--quantize", "none", "--check-data", str(MINI_DATA / "train.jsonl")]) == 0
    session = ort.InferenceSession(str(target / "onnx" / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["logits", "actor_logits", "text_type_logits"]
    report = json.loads((target / "onnx" / "export_report.json").read_text("utf-8"))["onnx/model.onnx"]
    assert report["actor_agreement"] == 1.0 and report["text_type_agreement"] == 1.0
    torch_preds = Classifier.from_pretrained(target, backend="torch").predict(TEXTS)
    onnx_preds = Classifier.from_pretrained(target, backend="onnx").predict(TEXTS)
    for t, o in zip(torch_preds, onnx_preds, strict=True):
        assert t.actor.label == o.actor.label and t.text_type.label == o.text_type.label
        assert list(t.actor.scores.values()) == pytest.approx(list(o.actor.scores.values()), abs=1e-4)


def test_an_onnx_file_without_the_heads_is_refused_with_the_fix(aux_model_dir: Path, trained_model_dir: Path,
                                                                tmp_path: Path) -> None:
    from inference.export import main

    plain = tmp_path / "plain"
    shutil.copytree(trained_model_dir, plain)
    assert main(["--model-dir", str(plain), "--quantize", "none", "--check-data", str(MINI_DATA / "train.jsonl")]) == 0
    target = tmp_path / "aux"
    shutil.copytree(aux_model_dir, target)
    (target / "onnx").mkdir(exist_ok=True)
    shutil.copyfile(plain / "onnx" / "model.onnx", target / "onnx" / "model.onnx")
    with pytest.raises(ValueError, match=r"actor_logits.*re-export"):
        Classifier.from_pretrained(target, backend="onnx")


def test_missing_or_mismatched_head_weights_are_named(aux_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(aux_model_dir, target)
    (target / AUXILIARY_WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=AUXILIARY_WEIGHTS_FILE):
        Classifier.from_pretrained(target, backend="torch")
    config = json.loads((target / "config.json").read_text("utf-8"))
    config["auxiliary_heads"]["tasks"][0]["name"] = "mood"
    (target / "config.json").write_text(json.dumps(config), "utf-8")
    with pytest.raises(ValueError, match=r"config\.json.*actor, text_type"):
        Classifier.from_pretrained(target, backend="torch")


def test_cli_writes_the_auxiliary_columns(aux_model_dir: Path, tmp_path: Path) -> None:
    from inference.cli import main

    source = tmp_path / "posts.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([[i, t] for i, t in enumerate(TEXTS[:5])] + [[99, ""]])
    target = tmp_path / "scored.csv"
    assert main(["--model-dir", str(aux_model_dir), "--input", str(source), "--output", str(target),
                 "--no-progress", "--backend", "torch"]) == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    expected = Classifier.from_pretrained(aux_model_dir, backend="torch").predict(TEXTS[:5])
    for row, pred in zip(rows, expected, strict=False):
        assert row["actor"] == pred.actor.label and row["text_type"] == pred.text_type.label
        for c in ACTOR_CLASSES:
            assert float(row[f"actor_score_{c}"]) == pytest.approx(pred.actor.scores[c], abs=1e-5)
    assert rows[-1]["error"] and rows[-1]["actor"] == "" and rows[-1]["text_type_score_lainnya"] == ""


def test_ray_actor_adds_the_auxiliary_columns_with_fixed_types(aux_model_dir: Path) -> None:
    import pyarrow as pa

    from inference.distributed import ClassifierActor

    actor = ClassifierActor(str(aux_model_dir), backend="torch")
    out = actor(pa.table({"text": [*TEXTS[:3], None]}))
    assert out.schema.field("actor").type == pa.string()
    assert out.schema.field("text_type_score_laporan_dugaan").type == pa.float64()
    assert out.column("actor").to_pylist()[:3] == [p.actor.label for p in actor.clf.predict(TEXTS[:3])]
    assert out.column("actor").to_pylist()[3] is None


def tiny_classifier() -> Any:
    """A 4-feature module whose only layer is named ``classifier`` (where the heads attach)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = torch.nn.Linear(4, 12)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(x)

    return Tiny()


def test_auxiliary_loss_ignores_missing_targets_and_negative_weights_are_refused() -> None:
    import torch

    from inference.auxiliary import KNOWN_TASKS
    from inference.auxiliary_heads import attach_auxiliary_heads
    from training.auxiliary_training import IGNORE_INDEX, active_tasks, auxiliary_loss

    model = tiny_classifier()
    attach_auxiliary_heads(model, [KNOWN_TASKS["actor"]])
    model(torch.randn(3, 4))
    none_known = {"actor_labels": torch.full((3,), IGNORE_INDEX)}
    assert auxiliary_loss(model, none_known, {"actor": 1.0}) is None
    some = auxiliary_loss(model, {"actor_labels": torch.tensor([0, IGNORE_INDEX, 2])}, {"actor": 2.0})
    assert torch.isfinite(some) and some > 0
    with pytest.raises(SystemExit, match="--actor-loss-weight must be >= 0"):
        active_tasks({"actor": -1.0})
    assert active_tasks({"actor": 0.0, "text_type": 0.0}) == []


def test_balanced_class_weights_lift_rare_actors_in_the_loss() -> None:
    import torch

    from inference.auxiliary import KNOWN_TASKS
    from inference.auxiliary_heads import attach_auxiliary_heads, auxiliary_logits
    from training.auxiliary_training import auxiliary_loss, class_weights

    actor = KNOWN_TASKS["actor"]
    first, rare = actor.classes[0], actor.classes[2]
    records = [{"aktor_asn": first}] * 6 + [{"aktor_asn": rare}] * 2 + [{"text": "no side field"}]
    weights = class_weights(records, actor, "balanced")
    assert weights is not None and len(weights) == len(actor.classes)
    # 8 known records, 2 classes present: 8 / (2 * 6) and 8 / (2 * 2); absent classes weigh 1
    assert weights[0] == pytest.approx(8 / 12) and weights[2] == pytest.approx(2.0)
    assert weights[1] == 1.0 and weights[3] == 1.0
    assert class_weights(records, actor, "none") is None
    assert class_weights([{"aktor_asn": first}] * 50 + [{"aktor_asn": rare}], actor, "balanced")[2] == 10.0  # capped
    with pytest.raises(SystemExit, match="--auxiliary-class-weighting"):
        class_weights(records, actor, "inverse")
    from training.train import parse_args

    with pytest.raises(SystemExit):  # refused by the argument parser, before any model is loaded
        parse_args(["--output-dir", "x", "--auxiliary-class-weighting", "inverse"])

    torch.manual_seed(0)
    model = tiny_classifier()
    attach_auxiliary_heads(model, [actor])
    model(torch.randn(4, 4))
    target = torch.tensor([0, 0, 0, 2])
    logits = auxiliary_logits(model)["actor"].detach().float()
    got = auxiliary_loss(model, {"actor_labels": target.clone()}, {"actor": 1.0}, {"actor": weights})
    nll = -torch.log_softmax(logits, dim=-1)[torch.arange(4), target]
    w = torch.tensor(weights)[target]
    assert float(got) == pytest.approx(float((w * nll).sum() / w.sum()), rel=1e-5)
    plain = auxiliary_loss(model, {"actor_labels": target.clone()}, {"actor": 1.0})
    assert float(plain) == pytest.approx(float(nll.mean()), rel=1e-5) and float(plain) != pytest.approx(float(got))

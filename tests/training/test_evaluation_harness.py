"""The evaluation harness: hand-computed metrics, every output file, baseline, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, MINI_DATA

from training import metric_suite
from training.evaluate import main
from training.robustness import load_suite, run_suite

GOLD = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
PRED = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])


def test_metrics_match_a_hand_computed_case() -> None:
    m = metric_suite.classification(GOLD, PRED, ["a", "b", "c"])
    # a: tp2 fp0 fn0; b: tp1 fp0 fn1; c: tp0 fp2 fn1
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["per_label"]["b"]["f1"] == pytest.approx(2 / 3) and m["per_label"]["b"]["recall"] == 0.5
    assert m["per_label"]["c"]["f1"] == 0.0 and m["per_label"]["c"]["support"] == 1
    assert m["micro_precision"] == pytest.approx(3 / 5) and m["micro_f1"] == pytest.approx(0.6)
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["weighted_f1"] == pytest.approx((2 * 1 + 2 * 2 / 3 + 0) / 5)
    assert m["samples_f1"] == pytest.approx((2 / 3 + 2 / 3 + 2 / 3 + 0) / 4)
    assert m["subset_accuracy"] == 0.0
    assert m["hamming_loss"] == pytest.approx(4 / 12)
    # any-violation: gold [1,1,1,0], predicted [1,1,1,1]
    assert m["any_violation_precision"] == 0.75 and m["any_violation_recall"] == 1.0
    assert m["any_violation_f1"] == pytest.approx(6 / 7)


def test_calibration_and_ranking_match_hand_computed_values() -> None:
    probs = np.array([[0.9], [0.9], [0.1], [0.1]])
    truth = np.array([[1], [0], [0], [0]])
    cal = metric_suite.calibration(truth, probs, ["a"])
    # bin 0.9: confidence 0.9, frequency 0.5, n 2; bin 0.1: confidence 0.1, frequency 0, n 2
    assert cal["overall_ece"] == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)
    rank = metric_suite.ranking(np.array([[1], [0], [1], [0]]), np.array([[0.8], [0.3], [0.6], [0.7]]), ["a"])
    # positives 0.8 and 0.6, negatives 0.3 and 0.7: 3 of 4 pairs ordered correctly
    assert rank["per_label"]["a"]["roc_auc"] == pytest.approx(0.75)


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, (200, 4))
    pred = np.where(rng.random((200, 4)) < 0.8, gold, 1 - gold)
    point = metric_suite.classification(gold, pred, list("abcd"))
    ci = metric_suite.bootstrap(gold, pred, n_boot=300, seed=0)
    for key in ("micro_f1", "macro_f1", "any_violation_f1"):
        lo, hi = ci[key]
        assert lo <= point[key] <= hi and hi - lo < 0.2


def test_robustness_pass_rates() -> None:
    items = load_suite(FIXTURES / "robustness_mini.yaml")

    def fake_model(texts):  # fires ajakan_mobilisasi on "wajib hadir", kampanye_medsos on "coblos"
        out = []
        for t in texts:
            labels = []
            if "coblos" in t.lower():
                labels.append("kampanye_medsos")
            if "wajib hadir" in t:
                labels.append("ajakan_mobilisasi")
            out.append(labels)
        return out

    result = run_suite(items, fake_model)["summary"]
    assert result["invariance"]["pass_rate"] == 1.0  # "cobloss" still contains "coblos"
    assert result["long_violation_at_end"]["pass_rate"] == 1.0
    assert result["negation_retraction"]["pass_rate"] == 1.0
    assert result["overall"]["n"] == 5


def test_harness_writes_every_file_with_consistent_numbers(trained_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code = main(["--model-dir", str(trained_model_dir), "--data-dir", str(MINI_DATA), "--split", "test",
                 "--output-dir", str(out), "--bootstrap", "50", "--robustness",
                 str(FIXTURES / "robustness_mini.yaml"), "--no-progress", "--backend", "torch"])
    assert code == 0
    for name in ("metrics.json", "report.md", "predictions.jsonl", "errors.md", "robustness.json",
                 "per_label_f1.png", "pr_curves.png", "reliability.png", "confusion_matrices.png",
                 "cooccurrence.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    for key in ("micro_f1", "macro_f1", "any_violation_f1", "per_label", "systems", "robustness"):
        assert key in metrics
    assert set(metrics["systems"]) == {"model", "TF-IDF + LR baseline"}
    assert set(metrics["robustness"]["model"]) >= {"invariance", "overall"}
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text("utf-8").splitlines()]
    assert len(preds) == 8 and {"id", "text", "gold", "predicted", "scores"} <= set(preds[0])
    labels = list(metrics["per_label"])
    gold = np.array([[int(n in p["gold"]) for n in labels] for p in preds])
    pred = np.array([[int(n in p["predicted"]) for n in labels] for p in preds])
    recomputed = metric_suite.classification(gold, pred, labels)
    assert metrics["micro_f1"] == pytest.approx(recomputed["micro_f1"])
    assert metrics["any_violation_f1"] == pytest.approx(recomputed["any_violation_f1"])
    report = (out / "report.md").read_text("utf-8")
    assert "## Headline" in report and "TF-IDF + LR baseline" in report and "![reliability]" in report
    assert "## Robustness suite" in report and "invariance" in report
    assert "## `kampanye_medsos`" in (out / "errors.md").read_text("utf-8")


def test_threshold_override_changes_predictions(trained_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert main(["--model-dir", str(trained_model_dir), "--data-dir", str(MINI_DATA), "--output-dir", str(out),
                 "--threshold", "0.0001", "--no-baseline", "--no-robustness", "--bootstrap", "0",
                 "--no-progress"]) == 0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text("utf-8").splitlines()]
    assert all(len(p["predicted"]) == 12 for p in preds)


def test_baseline_only_runs_without_a_model(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert main(["--baseline-only", "--data-dir", str(MINI_DATA), "--split", "validation",
                 "--output-dir", str(out), "--bootstrap", "20", "--no-robustness"]) == 0
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert list(metrics["systems"]) == ["TF-IDF + LR baseline"] and metrics["model"] is None
    assert 0.0 <= metrics["macro_f1"] <= 1.0


@pytest.mark.parametrize(("lines", "message"), [
    (['{"id": "1", "text": "a", "labels": []}', '{"id": "2", "text": "b"}'], ":2: missing field 'labels'"),
    (['{"id": "1", "text": "a", "labels": ["kampanye_sosmed"]}'], ":1: unknown label(s) ['kampanye_sosmed']"),
    (['{"id": "1", "text": "a", "labels": []}', "", '{"id": "3", "text": "c", labels: []}'], ":3: invalid JSON"),
])
def test_bad_data_file_fails_naming_file_line_and_problem(trained_model_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        lines: list[str], message: str) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(lines) + "\n", "utf-8")
    code = main(["--model-dir", str(trained_model_dir), "--data", str(data), "--output-dir",
                 str(tmp_path / "o"), "--no-baseline", "--no-robustness", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{data}{message}" in err

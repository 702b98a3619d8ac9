"""Evaluation harness: metrics with CIs, calibration, baseline, robustness, errors, plots.

    python -m training.evaluate --model-dir models/minilm --split test --output-dir reports/minilm
    python -m training.evaluate --model-dir models/minilm --data my_posts.jsonl --output-dir reports/mine
    python -m training.evaluate --baseline-only --split test --output-dir reports/baseline

``--data`` takes any JSONL in the dataset schema (``id``, ``text``, ``labels``; the side fields
``jenis_teks`` and ``aktor_asn`` feed the breakdowns when present). The model's thresholds are
used unless ``--threshold`` is given. Writes ``metrics.json``, ``report.md``,
``predictions.jsonl``, ``errors.md`` and PNG plots into ``--output-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.modeldir import atomic_write_text, write_json
from inference.taxonomy import Taxonomy, load_taxonomy
from training import metric_suite, plots
from training.baseline import TfidfBaseline
from training.data import DEFAULT_DATA_DIR, DataError, label_matrix, load_splits, read_jsonl
from training.real_eval import false_flags, real_markdown, real_report
from training.real_texts import REAL_DIR, read_real_jsonl
from training.robustness import DEFAULT_SUITE, load_suite, run_suite


def _fmt(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(m: dict[str, Any], key: str) -> str:
    ci = m.get("bootstrap", {}).get(key)
    return f"{m[key]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{m[key]:.3f}"


def headline_table(systems: dict[str, dict[str, Any]]) -> str:
    """Markdown table of the headline metrics, one row per system."""
    rows = ["| system | micro-F1 [95% CI] | macro-F1 [95% CI] | any-violation F1 [95% CI] | any-violation P / R "
            "| subset acc. | Hamming loss |",
            "|---|---|---|---|---|---:|---:|"]
    for name, m in systems.items():
        rows.append(
            f"| {name} | {_ci(m, 'micro_f1')} | {_ci(m, 'macro_f1')} | {_ci(m, 'any_violation_f1')} | "
            f"{m['any_violation_precision']:.3f} / {m['any_violation_recall']:.3f} | "
            f"{m['subset_accuracy']:.3f} | {m['hamming_loss']:.4f} |"
        )
    return "\n".join(rows)


def per_label_table(m: dict[str, Any], labels: Sequence[str], thresholds: dict[str, float] | None,
                    baseline: dict[str, Any] | None) -> str:
    head = "| label | precision | recall | F1 [95% CI] | support | AP | ROC-AUC | ECE | threshold |"
    sep = "|---|---:|---:|---|---:|---:|---:|---:|---:|"
    if baseline:
        head += " baseline F1 |"
        sep += "---:|"
    rows = [head, sep]
    cis = m.get("bootstrap", {}).get("per_label_f1")
    for i, name in enumerate(labels):
        p = m["per_label"][name]
        f1 = f"{p['f1']:.3f}" + (f" [{cis[i][0]:.2f}, {cis[i][1]:.2f}]" if cis else "")
        row = (f"| `{name}` | {p['precision']:.3f} | {p['recall']:.3f} | {f1} | {p['support']} | "
               f"{_fmt(p.get('average_precision'))} | {_fmt(p.get('roc_auc'))} | {_fmt(p.get('ece'))} | "
               f"{_fmt(thresholds.get(name) if thresholds else None, 2)} |")
        if baseline:
            row += f" {baseline['per_label'][name]['f1']:.3f} |"
        rows.append(row)
    return "\n".join(rows)


def breakdown_table(groups: dict[str, dict[str, Any]]) -> str:
    rows = ["| value | n | gold positive | flagged | any-violation P | any-violation R | any-violation F1 "
            "| false-positive rate |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for value, g in groups.items():
        rows.append(f"| {value} | {g['n']} | {g['positives']} | {g['flagged']} | {g['any_violation_precision']:.3f} | "
                    f"{g['any_violation_recall']:.3f} | {g['any_violation_f1']:.3f} | {g['false_positive_rate']:.3f} |")
    return "\n".join(rows)


def robustness_table(results: dict[str, dict[str, Any]]) -> str:
    systems = list(results)
    tests = list(next(iter(results.values()))["summary"])
    rows = ["| test type | n | " + " | ".join(f"{s} pass rate" for s in systems) + " |",
            "|---|---:|" + "---:|" * len(systems)]
    for test in tests:
        n = results[systems[0]]["summary"][test]["n"]
        rates = " | ".join(f"{results[s]['summary'][test]['pass_rate']:.1%}" for s in systems)
        rows.append(f"| {test} | {n} | {rates} |")
    return "\n".join(rows)


def errors_markdown(records: Sequence[dict[str, Any]], y_true: np.ndarray, probs: np.ndarray,
                    labels: Sequence[str], thresholds: np.ndarray, k: int = 5) -> str:
    """The highest-scoring false positives and lowest-scoring false negatives per label."""
    out = ["# Error analysis", "",
           "For each label: the false positives with the highest scores and the false negatives with "
           "the lowest scores (the model's most confident mistakes).", ""]
    for i, name in enumerate(labels):
        fired = probs[:, i] >= thresholds[i]
        fp = [j for j in np.argsort(-probs[:, i]) if fired[j] and not y_true[j, i]][:k]
        fn = [j for j in np.argsort(probs[:, i]) if not fired[j] and y_true[j, i]][:k]
        out.append(f"## `{name}` (threshold {thresholds[i]:.2f})")
        for title, idx in (("False positives", fp), ("False negatives", fn)):
            out.append(f"**{title}**" + ("" if idx else ": none"))
            for j in idx:
                text = " ".join(records[j]["text"].split())
                short = text[:280] + ("…" if len(text) > 280 else "")
                gold = ", ".join(records[j]["labels"]) or "tidak_ada_indikasi"
                out.append(f"- `{records[j]['id']}` score {probs[j, i]:.3f}; gold: {gold}. {short}")
            out.append("")
    return "\n".join(out) + "\n"


def _robustness(args: argparse.Namespace, taxonomy: Taxonomy, predictors: dict[str, Any]) -> dict[str, Any] | None:
    if args.no_robustness:
        return None
    suite_path = Path(args.robustness)
    if not suite_path.is_file():
        print(f"note: no robustness suite at {suite_path}; skipped", file=sys.stderr)
        return None
    items = load_suite(suite_path, taxonomy)
    return {name: run_suite(items, fn) for name, fn in predictors.items()}


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the harness with parsed arguments and write every output file."""
    from inference.classifier import Classifier

    started = time.time()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    taxonomy = load_taxonomy(Path(args.model_dir) if args.model_dir else args.taxonomy)
    labels = taxonomy.names
    if args.data:
        records = read_jsonl(args.data, taxonomy)
        source = str(args.data)
    else:
        records = load_splits(args.data_dir, taxonomy)[args.split]
        source = f"{args.data_dir} ({args.split} split)"
    texts = [r["text"] for r in records]
    y_true = label_matrix(records, taxonomy)
    systems: dict[str, dict[str, Any]] = {}
    predictors: dict[str, Any] = {}
    probs = thresholds = y_pred = None
    model_info: dict[str, Any] = {}
    real_records = _real_test_records(args, taxonomy)
    real_systems: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    auxiliary = None
    if not args.baseline_only:
        clf = Classifier.from_pretrained(args.model_dir, backend=args.backend, device=args.device,
                                         threshold=args.threshold)
        preds = clf.predict(texts, batch_size=args.batch_size, progress=not args.no_progress)
        probs = np.array([[p.scores[n] for n in labels] for p in preds])
        thresholds = np.array([clf.thresholds[n] for n in labels])
        y_pred = (probs >= thresholds).astype(int)
        systems["model"] = metric_suite.full_report(records, y_true, y_pred, probs, labels,
                                                    n_boot=args.bootstrap, seed=args.seed)
        systems["model"]["false_flags"] = false_flags(records, y_pred)
        if clf.auxiliary_tasks:
            from training.auxiliary_training import auxiliary_metrics

            auxiliary = auxiliary_metrics(records, preds, clf.auxiliary_tasks)
        if real_records:
            real_preds = clf.predict([r["text"] for r in real_records], batch_size=args.batch_size)
            r_probs = np.array([[p.scores[n] for n in labels] for p in real_preds])
            real_systems["model"] = ((r_probs >= thresholds).astype(int), r_probs)
        predictors["model"] = lambda ts: [p.labels for p in clf.predict(list(ts), batch_size=args.batch_size)]
        train_info = {}
        metrics_file = Path(args.model_dir) / "metrics.json"
        if metrics_file.is_file():
            train_info = json.loads(metrics_file.read_text("utf-8")).get("train", {})
        model_info = {"model_dir": str(args.model_dir), "backend": clf.backend.name,
                      "backbone": train_info.get("backbone"), "offline_standin": train_info.get("offline_standin"),
                      "thresholds": clf.thresholds, "threshold_override": args.threshold,
                      "calibrated": bool(train_info.get("calibration"))}
    baseline_metrics = None
    if args.baseline or args.baseline_only:
        splits = load_splits(args.data_dir, taxonomy)
        base = TfidfBaseline(seed=args.seed).fit([r["text"] for r in splits["train"]],
                                                 label_matrix(splits["train"], taxonomy))
        base.tune([r["text"] for r in splits["validation"]], label_matrix(splits["validation"], taxonomy), labels)
        b_probs = base.predict_proba(texts)
        b_pred = base.predict(texts)
        baseline_metrics = metric_suite.full_report(records, y_true, b_pred, b_probs, labels,
                                                    n_boot=args.bootstrap, seed=args.seed)
        baseline_metrics["false_flags"] = false_flags(records, b_pred)
        systems["TF-IDF + LR baseline"] = baseline_metrics
        if real_records:
            real_texts = [r["text"] for r in real_records]
            real_systems["TF-IDF + LR baseline"] = (base.predict(real_texts), base.predict_proba(real_texts))
        predictors["baseline"] = lambda ts: [[labels[i] for i in np.flatnonzero(row)] for row in base.predict(list(ts))]
        if args.baseline_only:
            probs, y_pred, thresholds = b_probs, b_pred, base.thresholds
    robustness = _robustness(args, taxonomy, predictors)
    real_test = None
    if real_records and real_systems:
        real_test = {"data": str(args.real_test), "num_examples": len(real_records),
                     "sites": len({r["site"] for r in real_records}),
                     "systems": real_report(real_records, label_matrix(real_records, taxonomy), real_systems,
                                            labels, n_boot=args.bootstrap, seed=args.seed)}
    primary = systems.get("model") or systems["TF-IDF + LR baseline"]
    assert probs is not None and y_pred is not None and thresholds is not None

    plot_files = {
        "per_label_f1": plots.per_label_f1(primary, labels, out / "per_label_f1.png",
                                           baseline_metrics if "model" in systems else None),
        "pr_curves": plots.pr_curves(y_true, probs, labels, out / "pr_curves.png"),
        "reliability": plots.reliability(primary["calibration"], out / "reliability.png"),
        "confusion": plots.confusion_matrices(y_true, y_pred, labels, out / "confusion_matrices.png"),
        "cooccurrence": plots.cooccurrence(y_true, y_pred, labels, out / "cooccurrence.png"),
    }
    pred_lines = []
    for j, r in enumerate(records):
        pred_lines.append(json.dumps({
            "id": r["id"], "text": r["text"], "gold": r["labels"],
            "predicted": [labels[i] for i in np.flatnonzero(y_pred[j])],
            "scores": {n: round(float(probs[j, i]), 6) for i, n in enumerate(labels)},
        }, ensure_ascii=False))
    atomic_write_text(out / "predictions.jsonl", "\n".join(pred_lines) + "\n")
    atomic_write_text(out / "errors.md", errors_markdown(records, y_true, probs, labels, thresholds))
    result = {
        "data": source,
        "num_examples": len(records),
        "taxonomy_version": taxonomy.version,
        **{k: primary[k] for k in ("micro_f1", "macro_f1", "weighted_f1", "samples_f1", "subset_accuracy",
                                    "hamming_loss", "any_violation_precision", "any_violation_recall",
                                    "any_violation_f1")},
        "per_label": primary["per_label"],
        "model": model_info or None,
        "systems": systems,
        "robustness": {k: v["summary"] for k, v in robustness.items()} if robustness else None,
        "real_test": real_test,
        "auxiliary": auxiliary,
        "seconds": time.time() - started,
    }
    write_json(out / "metrics.json", result)
    if robustness:
        write_json(out / "robustness.json", robustness)
    atomic_write_text(out / "report.md", render_report(result, labels, plot_files, robustness))
    return result


def _real_test_records(args: argparse.Namespace, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The real test passages to report beside the main data (none with ``--no-real-test``, when
    the file is absent, or when the main data is that same file)."""
    path = Path(args.real_test)
    if args.no_real_test or not path.is_file():
        return []
    if args.data and Path(args.data).resolve() == path.resolve():
        return []
    return read_real_jsonl(path, taxonomy)


def render_report(result: dict[str, Any], labels: Sequence[str], plot_files: dict[str, Path],
                  robustness: dict[str, Any] | None) -> str:
    """The human-readable report (markdown with the PNGs beside it)."""
    systems = result["systems"]
    primary_name = "model" if "model" in systems else "TF-IDF + LR baseline"
    primary = systems[primary_name]
    model = result.get("model") or {}
    baseline = systems.get("TF-IDF + LR baseline") if primary_name == "model" else None
    lines = [
        "# Evaluation report", "",
        "> Scores are potential indications for human verification, not findings of a violation.", "",
        f"- data: `{result['data']}`, {result['num_examples']} texts; taxonomy {result['taxonomy_version']}",
    ]
    if model:
        lines.append(f"- model: `{model['model_dir']}` (backbone `{model.get('backbone')}`, backend {model['backend']})"
                     + (" — **offline English stand-in backbone**, not IndoBERT"
                        if model.get("offline_standin") else ""))
        lines.append("- thresholds: " + (f"override {model['threshold_override']}" if model.get("threshold_override")
                                          else "the model's thresholds.json (tuned on validation)"))
    lines += ["", "## Headline", "", headline_table(systems), ""]
    real = result.get("real_test")
    if real:
        lines += ["## Real published text", "",
                  real_markdown(real["systems"], real["data"], real["num_examples"], real["sites"], systems)]
    if result.get("auxiliary"):
        from training.auxiliary_training import auxiliary_markdown

        lines += ["## Auxiliary outputs (actor, text type)", "", auxiliary_markdown(result["auxiliary"])]
    lines += [
              f"## Per label ({primary_name})", "",
              per_label_table(primary, labels, model.get("thresholds"), baseline), "",
              f"![per-label F1]({plot_files['per_label_f1'].name})", "",
              "## Precision-recall curves", "", f"![PR curves]({plot_files['pr_curves'].name})", ""]
    if "calibration" in primary:
        c = primary["calibration"]
        how = ""
        if model:
            how = (" The model's scores were calibrated after training (per-label Platt scaling on the validation "
                   "split, folded into the output layer)." if model.get("calibrated")
                   else " The model's scores are raw sigmoid outputs (not calibrated after training).")
        lines += ["## Calibration", "",
                  f"Expected calibration error, all labels pooled: {c['overall_ece']:.4f}; mean over labels: "
                  f"{c['macro_ece']:.4f} (per label in the table above).{how}", "",
                  f"![reliability]({plot_files['reliability'].name})", ""]
    lines += ["## Breakdown by `jenis_teks`", "", breakdown_table(primary["by_jenis_teks"]), "",
              "## Breakdown by `aktor_asn`", "", breakdown_table(primary["by_aktor_asn"]), ""]
    if robustness:
        lines += ["## Robustness suite (hand-written, CheckList-style)", "", robustness_table(robustness), ""]
    lines += ["## Confusion matrices", "", f"![confusion]({plot_files['confusion'].name})", "",
              "## Label co-occurrence", "", f"![co-occurrence]({plot_files['cooccurrence'].name})", "",
              "See `errors.md` for the most confident mistakes per label and `predictions.jsonl` for every "
              "prediction.", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=None, help="trained model directory")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--data", default=None, help="a JSONL file in the dataset schema")
    what.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                        help="dataset folder (for --split and the baseline's training data)")
    parser.add_argument("--taxonomy", default=None, help="taxonomy.yaml for --baseline-only")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--threshold", type=float, default=None, help="one threshold for every label")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="also train and report the TF-IDF baseline (default: on)")
    parser.add_argument("--baseline-only", action="store_true", help="evaluate only the TF-IDF baseline")
    parser.add_argument("--real-test", default=str(REAL_DIR / "test.jsonl"),
                        help="real published passages reported beside the main data (default: data/real/test.jsonl)")
    parser.add_argument("--no-real-test", action="store_true", help="do not report the real test passages")
    parser.add_argument("--robustness", default=str(DEFAULT_SUITE), help="robustness suite YAML")
    parser.add_argument("--no-robustness", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0 = no CIs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.evaluate``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.baseline_only and not args.model_dir:
        parser.error("--model-dir is required unless --baseline-only is given")
    if args.threshold is not None and not 0 < args.threshold < 1:
        parser.error("--threshold must lie strictly between 0 and 1")
    try:
        result = evaluate(args)
    except (DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(headline_table(result["systems"]))
    if result.get("real_test"):
        for name, m in result["real_test"]["systems"].items():
            print(f"real test ({result['real_test']['num_examples']} passages), {name}: micro-F1 {m['micro_f1']:.3f} "
                  f"macro-F1 {m['macro_f1']:.3f} any-violation F1 {m['any_violation_f1']:.3f}, false-flag rate on "
                  f"negatives {m['false_flags']['false_flag_rate']:.3f}")
    if result.get("robustness"):
        first = next(iter(result["robustness"].values()))
        print(f"robustness pass rate: {first['overall']['pass_rate']:.1%}")
    print(f"wrote {args.output_dir}/report.md and metrics.json in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

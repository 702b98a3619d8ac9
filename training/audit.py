"""Find likely label errors in the dataset and write them, ranked, as Label Studio tasks.

    python -m training.audit                      # reports/audit/audit_tasks.json + audit.json
    python -m training.audit --folds 5 --top 100 --output audit_tasks.json

Every example gets an out-of-fold probability for each label: the pooled splits are cut into
``--folds`` folds by iterative stratification, and the TF-IDF + logistic-regression baseline
(:mod:`training.baseline`, seconds per fit) is trained on the other folds. Confident learning
(cleanlab >= 2.8, Apache-2.0, multi-label mode) then compares each given label set with those
probabilities, flags the examples whose labels are likely wrong, ranks them (lowest label
quality first) and names, per example, the labels that look missing or wrong.

The tasks show the text with its **current** labels and side fields pre-filled (as a
prediction, ``model_version`` ``dataset-<version>``) and, in the task data, the audit's rank,
label-quality score and suspected changes, so a reviewer keeps or corrects the labels. The
export of the reviewed tasks goes back with
``python -m training.merge --export reviewed.json --batch audit-1 --update-existing``
(add ``--splits train,validation,test`` to correct test examples), which records every change.
A flagged example is a question, not a verdict: most flags on a clean dataset are hard but
correct examples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.taxonomy import Taxonomy, load_taxonomy
from training.data import DEFAULT_DATA_DIR, SPLITS, DataError, label_matrix, load_splits

DEFAULT_OUTPUT = Path("reports") / "audit" / "audit_tasks.json"


def out_of_fold_probs(texts: Sequence[str], y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """``(n, labels)`` probabilities, each from a baseline that did not see the example."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    from training.baseline import TfidfBaseline

    y = np.asarray(y)
    strat = np.hstack([y, (y.sum(axis=1) == 0).astype(np.int64)[:, None]])
    probs = np.zeros(y.shape, dtype=np.float64)
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, held_idx in splitter.split(np.zeros((len(y), 1)), strat):
        model = TfidfBaseline(seed=seed).fit([texts[i] for i in train_idx], y[train_idx])
        probs[held_idx] = model.predict_proba([texts[i] for i in held_idx])
    return probs


def find_issues(y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """cleanlab's multi-label label issues, ranked by label quality (worst first).

    Each issue: ``{"index", "label_quality", "suspect_missing": [(label, p)], "suspect_wrong":
    [(label, p)]}``; ``suspect_*`` come from cleanlab's per-class issue masks.
    """
    from cleanlab.multilabel_classification.filter import find_label_issues, find_multilabel_issues_per_class
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    given = [np.flatnonzero(row).tolist() for row in np.asarray(y)]
    ranked = find_label_issues(labels=given, pred_probs=probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(given, probs)
    per_class = find_multilabel_issues_per_class(labels=given, pred_probs=probs)
    masks = np.asarray(per_class, dtype=bool).reshape(len(given), len(labels))  # (n, labels)
    issues = []
    for i in ranked:
        i = int(i)
        missing: list[tuple[str, float]] = []
        wrong: list[tuple[str, float]] = []
        for k, name in enumerate(labels):
            if not masks[i, k]:
                continue
            (wrong if y[i, k] else missing).append((name, round(float(probs[i, k]), 3)))
        issues.append({"index": i, "label_quality": float(quality[i]), "suspect_missing": missing,
                       "suspect_wrong": wrong})
    return issues


def _suggestion(issue: dict[str, Any]) -> str:
    parts = [f"missing? {name} (p={p})" for name, p in issue["suspect_missing"]]
    parts += [f"wrong? {name} (p={p})" for name, p in issue["suspect_wrong"]]
    return "; ".join(parts) or "label set as a whole (no single label stands out)"


def audit_tasks(records: Sequence[dict[str, Any]], splits_of: Sequence[str], issues: Sequence[dict[str, Any]],
                version: str) -> list[dict[str, Any]]:
    """Label Studio tasks for the flagged examples, current labels pre-filled, in rank order."""
    from training.labelstudio import LS_SIDE_FIELDS

    tasks = []
    for rank, issue in enumerate(issues, start=1):
        r = records[issue["index"]]
        result = ([{"id": f"audit-{rank}-labels", "from_name": "labels", "to_name": "text", "type": "choices",
                    "value": {"choices": list(r["labels"])}}] if r["labels"] else [])
        result += [{"id": f"audit-{rank}-{f}", "from_name": f, "to_name": "text", "type": "choices",
                    "value": {"choices": [r[f]]}} for f in LS_SIDE_FIELDS if r.get(f)]
        tasks.append({
            "data": {"text": r["text"], "id": r["id"], "source": r.get("source", "handwritten"),
                     "split": splits_of[issue["index"]], "audit_rank": rank,
                     "label_quality": round(issue["label_quality"], 6),
                     "current_labels": "; ".join(r["labels"]) or "(tidak_ada_indikasi)",
                     "suspected": _suggestion(issue)},
            "predictions": [{"model_version": f"dataset-{version}", "score": round(issue["label_quality"], 6),
                             "result": result}],
        })
    return tasks


def run_audit(data_dir: str | Path, taxonomy: Taxonomy, splits: Sequence[str] = SPLITS, folds: int = 5,
              seed: int = 0) -> dict[str, Any]:
    """Load the splits, compute out-of-fold probabilities, find the issues."""
    from training.al_simulation import f1_scores
    from training.dataset_version import describe_version
    from training.thresholds import tune_thresholds

    loaded = load_splits(data_dir, taxonomy)
    records = [r for s in splits for r in loaded[s]]
    splits_of = [s for s in splits for _ in loaded[s]]
    y = label_matrix(records, taxonomy)
    probs = out_of_fold_probs([r["text"] for r in records], y, folds, seed)
    issues = find_issues(y, probs, taxonomy.names)
    tuned = tune_thresholds(y, probs, taxonomy.names)["thresholds"]
    pred = (probs >= np.array([tuned[n] for n in taxonomy.names])).astype(int)
    oof = f1_scores(y, pred)
    per_label = {name: {"suspect_missing": sum(1 for i in issues if name in dict(i["suspect_missing"])),
                        "suspect_wrong": sum(1 for i in issues if name in dict(i["suspect_wrong"]))}
                 for name in taxonomy.names}
    return {"records": records, "splits_of": splits_of, "probs": probs, "issues": issues,
            "version": describe_version(data_dir).split(" ")[0],
            "summary": {"examples": len(records), "folds": folds, "seed": seed, "issues": len(issues),
                        "issues_per_split": {s: sum(1 for i in issues if splits_of[i["index"]] == s) for s in splits},
                        "per_label": per_label,
                        "out_of_fold_macro_f1": oof["macro_f1"], "out_of_fold_micro_f1": oof["micro_f1"],
                        "dataset_version": describe_version(data_dir)}}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.audit``."""
    parser = argparse.ArgumentParser(prog="python -m training.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--taxonomy", default=None)
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits to audit (default: all)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=None, help="write only the N worst issues (default: all)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="Label Studio tasks JSON")
    parser.add_argument("--report", default=None,
                        help="JSON summary and ranked issues (default: audit.json beside --output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.audit``."""
    from inference.modeldir import atomic_write_text

    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not chosen or any(s not in SPLITS for s in chosen):
        parser.error(f"--splits takes names from {', '.join(SPLITS)}; got {args.splits!r}")
    if args.folds < 2:
        parser.error("--folds must be >= 2")
    taxonomy = load_taxonomy(args.taxonomy)
    try:
        result = run_audit(args.data_dir, taxonomy, chosen, args.folds, args.seed)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # e.g. a fold's training part without a positive of some label
        print(f"error: {exc}; use fewer --folds", file=sys.stderr)
        return 1
    issues = result["issues"][: args.top] if args.top else result["issues"]
    tasks = audit_tasks(result["records"], result["splits_of"], issues, result["version"])
    atomic_write_text(args.output, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    report_path = Path(args.report) if args.report else Path(args.output).with_name("audit.json")
    records = result["records"]
    ranked = [{"rank": k, "id": records[i["index"]]["id"], "split": result["splits_of"][i["index"]],
               "labels": records[i["index"]]["labels"], "label_quality": round(i["label_quality"], 4),
               "suspected": _suggestion(i)} for k, i in enumerate(result["issues"], start=1)]
    atomic_write_text(report_path, json.dumps({**result["summary"], "ranked": ranked}, ensure_ascii=False,
                                              indent=1) + "\n")
    s = result["summary"]
    print(f"{s['issues']} likely label issues among {s['examples']} examples ({s['folds']}-fold out-of-fold "
          f"baseline, macro-F1 {s['out_of_fold_macro_f1']:.3f}); wrote {len(tasks)} tasks to {args.output} and "
          f"the ranked list to {report_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

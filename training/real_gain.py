"""Does training on real published text help? Hand-written only vs hand-written + real training part.

    python -m training.real_gain --output reports/real-gain.json

Fits the TF-IDF + LR baseline twice, on the hand-written train split alone and with
``data/real/train.jsonl`` added, tunes each one's thresholds on the hand-written validation
split, and scores both on the real validation part (where the recipe decision is made), the
real test part (reported only) and the hand-written test split (to see what the addition costs
there). Transformer backbones are compared the same way by training with and without
``--extra-train-data data/real/train.jsonl`` and evaluating both model directories with
``python -m training.evaluate`` (which reports the real test part) and with
``--data data/real/validation.jsonl`` for the decision.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.modeldir import write_json
from inference.taxonomy import load_taxonomy
from training import metric_suite
from training.baseline import TfidfBaseline
from training.data import DEFAULT_DATA_DIR, DataError, label_matrix, load_splits
from training.real_eval import false_flags
from training.real_texts import REAL_DIR, load_real_splits

HEADLINE = ("micro_f1", "macro_f1", "any_violation_f1")


def compare_baselines(data_dir: str | Path = DEFAULT_DATA_DIR, real_dir: str | Path = REAL_DIR,
                      n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of the baseline trained without and with the real training part, per test set."""
    taxonomy = load_taxonomy()
    labels = taxonomy.names
    hand = load_splits(data_dir, taxonomy)
    real = load_real_splits(real_dir, taxonomy)
    if not real["train"] or not real["test"]:
        raise FileNotFoundError(f"{real_dir} needs train.jsonl and test.jsonl (python -m training.real_texts build)")
    eval_sets = {"real validation": real["validation"], "real test": real["test"], "hand-written test": hand["test"]}
    recipes = {"hand-written only": hand["train"], "hand-written + real train": hand["train"] + real["train"]}
    out: dict[str, Any] = {"train_sizes": {k: len(v) for k, v in recipes.items()}, "results": {}}
    for recipe, train in recipes.items():
        model = TfidfBaseline(seed=seed).fit([r["text"] for r in train], label_matrix(train, taxonomy))
        model.tune([r["text"] for r in hand["validation"]], label_matrix(hand["validation"], taxonomy), labels)
        out["results"][recipe] = {}
        for name, records in eval_sets.items():
            if not records:
                continue
            texts = [r["text"] for r in records]
            y_true = label_matrix(records, taxonomy)
            y_pred, probs = model.predict(texts), model.predict_proba(texts)
            m = metric_suite.full_report(records, y_true, y_pred, probs, labels, n_boot=n_boot, seed=seed)
            out["results"][recipe][name] = {
                **{k: m[k] for k in HEADLINE},
                "bootstrap": {k: m["bootstrap"][k] for k in HEADLINE if k in m.get("bootstrap", {})},
                "false_flag_rate": false_flags(records, y_pred)["false_flag_rate"],
                "num_examples": len(records),
            }
    return out


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a markdown table (one row per recipe and test set)."""
    rows = ["| training data | scored on | micro-F1 [95% CI] | macro-F1 [95% CI] | any-violation F1 "
            "| false-flag rate |", "|---|---|---|---|---:|---:|"]
    for recipe, sets in result["results"].items():
        for name, m in sets.items():
            def ci(key: str, m: dict[str, Any] = m) -> str:
                b = m["bootstrap"].get(key)
                return f"{m[key]:.3f} [{b[0]:.3f}, {b[1]:.3f}]" if b else f"{m[key]:.3f}"
            rows.append(f"| {recipe} | {name} ({m['num_examples']}) | {ci('micro_f1')} | {ci('macro_f1')} | "
                        f"{m['any_violation_f1']:.3f} | {m['false_flag_rate']:.3f} |")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.real_gain``."""
    parser = argparse.ArgumentParser(prog="python -m training.real_gain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--real-dir", default=str(REAL_DIR))
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the figures to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.real_gain``."""
    args = build_parser().parse_args(argv)
    try:
        result = compare_baselines(args.data_dir, args.real_dir, args.bootstrap, args.seed)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown(result))
    if args.output:
        write_json(args.output, result)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""When to stop labelling: agreement between consecutive models on a fixed unlabelled stop set.

Bloodgood and Vijay-Shanker (2009, "A method for stopping active learning based on stabilizing
predictions", CoNLL) score a fixed set of unlabelled texts (the *stop set*) with the model of
each round and measure Cohen's kappa between the decisions of consecutive rounds. When kappa
stays at or above 0.99 (they average the last three rounds), new labels no longer change what
the model decides, and more labelling of the same kind is unlikely to pay. Here a decision is
one (text, label) pair at the model's thresholds; the any-violation view (flagged or not) and
each label's kappa are reported too.

    python -m training.stopping --stop-set stop.csv --previous-model-dir models/round1 \
        --model-dir models/round2 --history rounds.json

The stop set must stay the same across rounds; it may be any few hundred to few thousand
unlabelled posts of the kind you score (it need not be excluded from selection).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: kappa at or above which predictions count as stable (Bloodgood and Vijay-Shanker 2009)
STOP_KAPPA = 0.99
#: number of consecutive rounds averaged
STOP_WINDOW = 3


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two binary decision vectors. Identical vectors give 1.0, also when
    constant (where the usual formula is 0/0)."""
    x = np.asarray(a, dtype=bool).ravel()
    y = np.asarray(b, dtype=bool).ravel()
    if x.shape != y.shape:
        raise ValueError(f"decision shapes differ: {x.shape} vs {y.shape}")
    if x.size == 0:
        raise ValueError("no decisions to compare")
    observed = float(np.mean(x == y))
    px, py = float(x.mean()), float(y.mean())
    expected = px * py + (1 - px) * (1 - py)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def decision_agreement(previous: np.ndarray, new: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Kappa between two models' 0/1 decisions ``(n_texts, n_labels)`` on the same texts."""
    p = np.asarray(previous, dtype=bool)
    q = np.asarray(new, dtype=bool)
    if p.shape != q.shape or p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"decisions must both be (n, {len(labels)}), got {p.shape} and {q.shape}")
    return {
        "kappa": cohen_kappa(p, q),
        "any_violation_kappa": cohen_kappa(np.asarray(p.any(axis=1)), np.asarray(q.any(axis=1))),
        "per_label_kappa": {name: cohen_kappa(p[:, i], q[:, i]) for i, name in enumerate(labels)},
        "changed_texts": int(np.sum((p != q).any(axis=1))),
        "num_texts": int(p.shape[0]),
        "flagged_before": int(p.any(axis=1).sum()),
        "flagged_after": int(q.any(axis=1).sum()),
    }


def should_stop(kappas: Sequence[float], threshold: float = STOP_KAPPA, window: int = STOP_WINDOW) -> bool:
    """The stabilizing-predictions rule: the mean of the last ``window`` kappas >= ``threshold``."""
    return len(kappas) >= window and float(np.mean(list(kappas)[-window:])) >= threshold


def model_decisions(model_dir: str | Path, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """0/1 decisions of a model directory at its own thresholds."""
    from inference.classifier import Classifier

    clf = Classifier.from_pretrained(model_dir)
    preds = clf.predict(list(texts), batch_size=batch_size)
    return np.array([[name in p.labels for name in clf.labels] for p in preds], dtype=bool)


def stop_set_agreement(previous_model_dir: str | Path, model_dir: str | Path, texts: Sequence[str],
                       batch_size: int = 32) -> dict[str, Any]:
    """Score the stop set with both models and compare their decisions."""
    from inference.modeldir import read_model_info

    labels = read_model_info(model_dir).taxonomy.names
    previous_labels = read_model_info(previous_model_dir).taxonomy.names
    if labels != previous_labels:
        raise ValueError(f"the two models have different label sets: {previous_labels} vs {labels}")
    return decision_agreement(model_decisions(previous_model_dir, texts, batch_size),
                              model_decisions(model_dir, texts, batch_size), labels)


def format_agreement(result: dict[str, Any]) -> str:
    """One line for a round's log."""
    return (f"stop set: kappa {result['kappa']:.3f} (any-violation {result['any_violation_kappa']:.3f}); "
            f"{result['changed_texts']} of {result['num_texts']} texts changed decisions; flagged "
            f"{result['flagged_before']} -> {result['flagged_after']}")


def update_history(path: str | Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Append a round to a JSON history file and evaluate the stopping rule on it."""
    from inference.modeldir import atomic_write_text

    file = Path(path)
    history = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {"rounds": []}
    history["rounds"].append(entry)
    kappas = [r["kappa"] for r in history["rounds"]]
    history["stop"] = should_stop(kappas)
    history["rule"] = (f"stop when the mean kappa of the last {STOP_WINDOW} rounds >= {STOP_KAPPA} "
                       "(Bloodgood and Vijay-Shanker 2009)")
    atomic_write_text(file, json.dumps(history, ensure_ascii=False, indent=1) + "\n")
    return history


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.stopping``."""
    parser = argparse.ArgumentParser(prog="python -m training.stopping", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop-set", required=True, help="unlabelled texts: .csv, .jsonl, .parquet or .txt")
    parser.add_argument("--previous-model-dir", required=True, help="the model of the previous round")
    parser.add_argument("--model-dir", required=True, help="the model of this round")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default=None)
    parser.add_argument("--history", default=None,
                        help="JSON file collecting the rounds' agreement; says when the stopping rule is met")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.stopping``."""
    from training.select import SelectionError, read_pool

    args = build_parser().parse_args(argv)
    try:
        pool = read_pool(args.stop_set, args.text_column, args.id_column)
    except SelectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        result = stop_set_agreement(args.previous_model_dir, args.model_dir, pool.texts, args.batch_size)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(format_agreement(result))
    if args.history:
        history = update_history(args.history, {"previous_model_dir": str(args.previous_model_dir),
                                                "model_dir": str(args.model_dir), **result})
        verdict = "met: more labels of this kind are unlikely to change the model" if history["stop"] else "not met"
        print(f"stopping rule ({history['rule']}): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

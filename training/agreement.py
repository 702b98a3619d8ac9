"""Inter-annotator agreement of the double-annotated sample (Cohen's kappa).

    python -m training.agreement

Reads ``data/annotation/annotator2.jsonl`` (the blind second annotator) and
``data/annotation/adjudication.jsonl`` (every item where the two annotators disagreed, with the
first annotator's labels and the adjudicated result). Where no adjudication is recorded, the two
annotators agreed. Prints Cohen's kappa per label, pooled over all (item, label) decisions, and
for the any-violation view.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.taxonomy import load_taxonomy
from training.data import REPO_ROOT

ANNOTATION_DIR = REPO_ROOT / "data" / "annotation"


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(annotation_dir: str | Path = ANNOTATION_DIR) -> dict[str, Any]:
    """Kappa per label, pooled and any-violation, with counts."""
    from sklearn.metrics import cohen_kappa_score

    folder = Path(annotation_dir)
    names = load_taxonomy().names
    second = _read(folder / "annotator2.jsonl")
    disagreements = {r["item"]: r for r in _read(folder / "adjudication.jsonl")}
    first_labels = [disagreements[r["item"]]["annotator1"] if r["item"] in disagreements else r["labels"]
                    for r in second]
    a = np.array([[int(n in labels) for n in names] for labels in first_labels])
    b = np.array([[int(n in r["labels"]) for n in names] for r in second])
    per_label = {
        n: {"kappa": float(cohen_kappa_score(a[:, i], b[:, i])), "positives_annotator1": int(a[:, i].sum()),
            "positives_annotator2": int(b[:, i].sum()), "agreement": float(np.mean(a[:, i] == b[:, i]))}
        for i, n in enumerate(names)
    }
    return {
        "items": len(second),
        "disagreeing_items": len(disagreements),
        "exact_label_set_agreement": float(np.mean((a == b).all(axis=1))),
        "pooled_kappa": float(cohen_kappa_score(a.ravel(), b.ravel())),
        "mean_label_kappa": float(np.mean([v["kappa"] for v in per_label.values()])),
        "any_violation_kappa": float(cohen_kappa_score(a.max(axis=1), b.max(axis=1))),
        "per_label": per_label,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.agreement``."""
    parser = argparse.ArgumentParser(prog="python -m training.agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotation-dir", default=str(ANNOTATION_DIR))
    parser.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.agreement``."""
    args = build_parser().parse_args(argv)
    result = agreement(args.annotation_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['items']} items, {result['disagreeing_items']} with different label sets "
          f"(exact agreement {result['exact_label_set_agreement']:.1%})")
    print(f"{'label':28} {'kappa':>6} {'pos A1':>7} {'pos A2':>7}")
    for name, v in result["per_label"].items():
        print(f"{name:28} {v['kappa']:6.3f} {v['positives_annotator1']:7d} {v['positives_annotator2']:7d}")
    print(f"pooled kappa {result['pooled_kappa']:.3f}; mean of per-label kappas {result['mean_label_kappa']:.3f}; "
          f"any-violation kappa {result['any_violation_kappa']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

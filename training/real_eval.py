"""Scoring on real published passages, reported beside the hand-written test split.

Every evaluation report (``python -m training.evaluate``) gets a section on the real test part
(``data/real/test.jsonl``, see :mod:`training.real_texts`): micro-, macro- and any-violation F1
with bootstrap intervals for the model and the baseline, and the **false-flag rate on real
negatives** (the share of real texts with no violation that get at least one label), overall and
per kind of negative. The gap between the two test sets is what a user should expect when moving
from the project's hand-written texts to published text.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training import metric_suite


def false_flags(records: Sequence[dict[str, Any]], y_pred: np.ndarray) -> dict[str, Any]:
    """False-flag rate on the negatives, overall and per ``kategori_negatif``."""
    flagged = y_pred.max(axis=1) > 0 if y_pred.size else np.zeros(len(records), dtype=bool)
    negatives = [i for i, r in enumerate(records) if not r["labels"]]
    by_kind: dict[str, list[int]] = collections.defaultdict(list)
    for i in negatives:
        by_kind[str(records[i].get("kategori_negatif", "?"))].append(i)
    return {
        "negatives": len(negatives),
        "false_flags": int(sum(flagged[i] for i in negatives)),
        "false_flag_rate": float(np.mean([flagged[i] for i in negatives])) if negatives else 0.0,
        "by_kind": {kind: {"n": len(idx), "false_flag_rate": float(np.mean([flagged[i] for i in idx]))}
                    for kind, idx in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))},
    }


def real_report(records: Sequence[dict[str, Any]], y_true: np.ndarray,
                systems: Mapping[str, tuple[np.ndarray, np.ndarray]], labels: Sequence[str],
                n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of each system (``name -> (y_pred, probs)``) on the real passages."""
    out: dict[str, Any] = {}
    for name, (y_pred, probs) in systems.items():
        m = metric_suite.full_report(records, y_true, y_pred, probs, labels, n_boot=n_boot, seed=seed)
        m["false_flags"] = false_flags(records, y_pred)
        out[name] = m
    return out


def real_markdown(report: Mapping[str, Any], source: str, n_texts: int, n_sites: int,
                  hand_written: Mapping[str, Any] | None = None) -> str:
    """The report section: the headline on real text, beside the hand-written figures."""

    def ci(m: Mapping[str, Any], key: str) -> str:
        bounds = m.get("bootstrap", {}).get(key)
        return f"{m[key]:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else f"{m[key]:.3f}"

    lines = [f"Real published passages (`{source}`: {n_texts} excerpts of news and agency pages from "
             f"{n_sites} sites, never trained or tuned on). Same thresholds as above.", "",
             "| system | test set | micro-F1 [95% CI] | macro-F1 [95% CI] | any-violation F1 [95% CI] | "
             "false-flag rate on negatives |",
             "|---|---|---|---|---|---:|"]
    for name, m in report.items():
        if hand_written and name in hand_written:
            h = hand_written[name]
            rate = h.get("false_flags", {}).get("false_flag_rate", float("nan"))
            lines.append(f"| {name} | hand-written | {ci(h, 'micro_f1')} | {ci(h, 'macro_f1')} | "
                         f"{ci(h, 'any_violation_f1')} | {rate:.3f} |")
        f = m["false_flags"]
        lines.append(f"| {name} | **real** | {ci(m, 'micro_f1')} | {ci(m, 'macro_f1')} | {ci(m, 'any_violation_f1')} | "
                     f"{f['false_flag_rate']:.3f} ({f['false_flags']}/{f['negatives']}) |")
    lines += ["", "False-flag rate on the real negatives, by kind:", "",
              "| kind | n | " + " | ".join(report) + " |", "|---|---:|" + "---:|" * len(report)]
    kinds = next(iter(report.values()))["false_flags"]["by_kind"]
    for kind, entry in kinds.items():
        rates = " | ".join(f"{m['false_flags']['by_kind'][kind]['false_flag_rate']:.2f}" for m in report.values())
        lines.append(f"| `{kind}` | {entry['n']} | {rates} |")
    return "\n".join(lines) + "\n"

"""CheckList-style robustness suite (hand-written texts in ``data/robustness/suite.yaml``).

Test types and what passes:

* ``invariance``: every variant gets the same labels as its base text;
* ``negation_retraction``, ``rule_explainer_pledge``, ``non_asn_actor``: no label fires;
* ``long_violation_at_end``: every expected label fires although it appears only at the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from inference.taxonomy import Taxonomy
from training.data import REPO_ROOT

DEFAULT_SUITE = REPO_ROOT / "data" / "robustness" / "suite.yaml"
TEST_TYPES = ("invariance", "negation_retraction", "rule_explainer_pledge", "non_asn_actor",
              "long_violation_at_end")

#: a function from texts to predicted label lists
Predictor = Callable[[Sequence[str]], list[list[str]]]


def load_suite(path: str | Path = DEFAULT_SUITE, taxonomy: Taxonomy | None = None) -> list[dict[str, Any]]:
    """Read and check the suite: known test types, texts present, expected labels valid."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"robustness suite not found: {file}")
    items = yaml.safe_load(file.read_text(encoding="utf-8")) or []
    seen = set()
    for i, item in enumerate(items):
        where = f"{file}: item {i} ({item.get('id', '?')})"
        if item.get("test") not in TEST_TYPES:
            raise ValueError(f"{where}: unknown test type {item.get('test')!r}; known: {', '.join(TEST_TYPES)}")
        if item["id"] in seen:
            raise ValueError(f"{where}: duplicate id")
        seen.add(item["id"])
        if item["test"] == "invariance":
            if not item.get("base") or not item.get("variants"):
                raise ValueError(f"{where}: invariance items need 'base' and 'variants'")
        elif not item.get("text"):
            raise ValueError(f"{where}: missing 'text'")
        if taxonomy is not None:
            unknown = set(item.get("expected_labels") or []) - set(taxonomy.names)
            if unknown:
                raise ValueError(f"{where}: unknown expected label(s) {sorted(unknown)}")
    return items


def run_suite(items: Sequence[dict[str, Any]], predict: Predictor) -> dict[str, Any]:
    """Run every item through ``predict`` (one batched call) and compute pass rates."""
    texts: list[str] = []
    for item in items:
        if item["test"] == "invariance":
            texts += [item["base"], *item["variants"]]
        else:
            texts.append(item["text"])
    predicted = iter(predict(texts))
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        test = item["test"]
        if test == "invariance":
            base = next(predicted)
            variants = [next(predicted) for _ in item["variants"]]
            failed = [i for i, v in enumerate(variants) if v != base]
            results[test].append({"id": item["id"], "passed": not failed, "base": base,
                                  "failed_variants": failed,
                                  "variant_labels": [variants[i] for i in failed]})
        else:
            got = next(predicted)
            expected = list(item.get("expected_labels") or [])
            passed = set(expected) <= set(got) if test == "long_violation_at_end" else not got
            results[test].append({"id": item["id"], "passed": passed, "expected": expected, "predicted": got})
    summary = {
        test: {"n": len(rows), "passed": sum(r["passed"] for r in rows),
               "pass_rate": sum(r["passed"] for r in rows) / len(rows)}
        for test, rows in results.items()
    }
    total = sum(s["n"] for s in summary.values())
    summary["overall"] = {"n": total, "passed": sum(s["passed"] for s in summary.values()),
                          "pass_rate": sum(s["passed"] for s in summary.values()) / max(total, 1)}
    return {"summary": summary, "results": dict(results)}

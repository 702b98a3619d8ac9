"""training.al_simulation on a small slice of the project's data: paired seed sets, the
learning-curve bookkeeping, the stop-set kappa, the summary and the plot."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO

from inference.taxonomy import load_taxonomy
from training.al_simulation import (
    f1_scores,
    full_pool_reference,
    main,
    plot_curves,
    simulate_run,
    stratified_seed,
    summarise,
)
from training.data import label_matrix, load_splits

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def small_results() -> dict[str, Any]:
    splits = load_splits(REPO / "data" / "dataset", TAX)
    rng = random.Random(0)
    pool, val, test = (rng.sample(splits[s], k) for s, k in (("train", 240), ("validation", 120), ("test", 120)))
    runs = {s: {"0": simulate_run(pool, val, test, TAX, s, seed=0, seed_size=60, batch_size=40, max_labels=140,
                                  stop_size=80)} for s in ("random", "uncertainty", "diverse")}
    results: dict[str, Any] = {"config": {"seeds": [0], "learner": "TF-IDF + logistic regression baseline"},
                               "runs": runs, "full_pool": full_pool_reference(pool, val, test, TAX)}
    results["summary"] = summarise(results)
    return results


def test_curves_are_paired_and_complete(small_results: dict[str, Any]) -> None:
    runs = {s: r["0"] for s, r in small_results["runs"].items()}
    for curve in runs.values():
        assert [r["labels"] for r in curve] == [60, 100, 140]
        assert curve[0]["stop_kappa"] is None and curve[0]["batch_mean_uncertainty"] is None
        assert all(-1.0 <= r["stop_kappa"] <= 1.0 for r in curve[1:])
        assert all(0.0 <= r[m] <= 1.0 for r in curve for m in ("macro_f1", "micro_f1", "any_violation_f1"))
        assert sum(curve[-1]["positives_per_label"].values()) >= sum(curve[0]["positives_per_label"].values())
    first = {s: {k: v for k, v in c[0].items()} for s, c in runs.items()}
    assert first["random"] == first["uncertainty"] == first["diverse"]  # one seed set for all strategies
    assert runs["random"][1]["positives_per_label"] != runs["uncertainty"][1]["positives_per_label"]
    assert runs["random"][1]["batch_mean_uncertainty"] is None
    assert 0.0 < runs["uncertainty"][1]["batch_mean_uncertainty"] <= 1.0


def test_summary_and_plot(small_results: dict[str, Any], tmp_path: Path) -> None:
    summary = small_results["summary"]
    for strategy, s in summary.items():
        curve = small_results["runs"][strategy]["0"]
        assert s["labels"] == [60, 100, 140]
        assert s["macro_f1"]["mean"] == [round(r["macro_f1"], 4) for r in curve]
        assert s["macro_f1"]["area"] == pytest.approx(np.mean([r["macro_f1"] for r in curve]), abs=1e-4)
        assert s["stop_kappa"]["mean"][0] is None and len(s["stop_kappa"]["mean"]) == 3
        if strategy != "random":
            diff = s["minus_random"]["macro_f1"]
            assert diff["area_mean"] == pytest.approx(s["macro_f1"]["area"] - summary["random"]["macro_f1"]["area"],
                                                      abs=2e-4)
            assert diff["final_seeds_better"] == int(curve[-1]["macro_f1"] >
                                                     small_results["runs"]["random"]["0"][-1]["macro_f1"])
    results = tmp_path / "results.json"
    results.write_text(json.dumps(small_results), "utf-8")
    png = tmp_path / "curves.png"
    assert main(["--replot", "--output", str(results), "--plot", str(png)]) == 0
    head = png.read_bytes()
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) < 300_000
    plot_curves(small_results, tmp_path / "again.png")
    assert (tmp_path / "again.png").is_file()


def test_stratified_seed_set_has_the_exact_size_and_every_label() -> None:
    records = load_splits(REPO / "data" / "dataset", TAX)["train"]
    y = label_matrix(records, TAX)
    seed_set = stratified_seed(y, 60, seed=3)
    assert len(seed_set) == len(set(seed_set.tolist())) == 60
    assert (y[seed_set].sum(axis=0) > 0).all()
    assert stratified_seed(y, 60, seed=3).tolist() == seed_set.tolist()
    with pytest.raises(ValueError, match="no positive of label"):
        stratified_seed(y, 5, seed=0)


def test_f1_scores_match_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = (rng.random((200, 12)) < 0.15).astype(np.int64)
    pred = np.where(rng.random((200, 12)) < 0.8, y, 1 - y)
    pred[:, 5] = 0  # a label never predicted counts as F1 0
    scores = f1_scores(y, pred)
    assert scores["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert scores["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert scores["any_violation_f1"] == pytest.approx(f1_score(y.max(axis=1), pred.max(axis=1)))

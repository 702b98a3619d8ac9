"""Does active learning beat random sampling here? A simulation on the project's dataset.

    python -m training.al_simulation --seeds 0 1 2 3 4 \
        --output docs/active_learning_results.json --plot docs/active_learning_curves.png

The training split plays the unlabelled pool: its labels are hidden and revealed only for the
texts a strategy selects ("annotation"). Each run starts from a small seed set drawn from the
pool by iterative stratification (every label present), then adds ``--batch-size`` texts per
round with one strategy of :mod:`training.select` (``random``, ``uncertainty``, ``diverse``)
until ``--max-labels``. Every round retrains the fast learner, the TF-IDF + logistic-regression
baseline (:mod:`training.baseline`, seconds per fit: a transformer retrained 100+ times does not
fit a CPU), tunes per-label thresholds on the validation split, and scores the test split
(macro-F1, micro-F1, any-violation F1; the test split never chooses anything). It also scores a
fixed stop set (``--stop-size`` pool texts drawn once per seed) and reports Cohen's kappa
between consecutive rounds' decisions (:mod:`training.stopping`). Seeds pair the strategies:
for one seed every strategy starts from the same seed set and stop set.
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

from inference.taxonomy import Taxonomy, load_taxonomy
from training.data import DEFAULT_DATA_DIR, char_ngram_matrix, label_matrix, load_splits
from training.dataset_version import describe_version
from training.select import STRATEGIES, select_diverse, select_random, select_uncertainty, text_uncertainty
from training.stopping import STOP_KAPPA, decision_agreement, should_stop

STRATEGY_STYLE = {"random": ("#555555", "--"), "uncertainty": ("#1f77b4", "-"), "diverse": ("#d62728", "-")}


def stratified_seed(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seed set of ``size`` drawn by iterative stratification over the labels and
    the no-label outcome; raises ``ValueError`` if a label ends up without a positive."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    strat = np.hstack([y, (y.sum(axis=1) == 0).astype(np.int64)[:, None]])
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, train_size=size, test_size=len(y) - size,
                                                random_state=seed)
    chosen, rest = next(splitter.split(np.zeros((len(y), 1)), strat))
    rng = np.random.default_rng(seed)
    if len(chosen) > size:  # the splitter rounds; trim or top up at random to the exact size
        chosen = rng.choice(chosen, size=size, replace=False)
    elif len(chosen) < size:
        chosen = np.concatenate([chosen, rng.choice(rest, size=size - len(chosen), replace=False)])
    missing = np.flatnonzero(y[chosen].sum(axis=0) == 0)
    if len(missing):
        raise ValueError(f"a seed set of {size} has no positive of label column(s) {missing.tolist()}; "
                         "use a larger --seed-size")
    return np.sort(chosen)


def f1_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Macro-F1, micro-F1 and any-violation F1 (the definitions of training.metric_suite)."""
    tp = (y & pred).sum(axis=0).astype(float)
    fp = ((1 - y) & pred).sum(axis=0).astype(float)
    fn = (y & (1 - pred)).sum(axis=0).astype(float)
    denom = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    ya, pa = y.max(axis=1), pred.max(axis=1)
    a_tp, a_fp, a_fn = float((ya & pa).sum()), float(((1 - ya) & pa).sum()), float((ya & (1 - pa)).sum())
    return {"macro_f1": float(per_label.mean()),
            "micro_f1": float(2 * tp.sum() / micro_denom) if micro_denom else 0.0,
            "any_violation_f1": 2 * a_tp / (2 * a_tp + a_fp + a_fn) if a_tp else 0.0}


def simulate_run(pool: Sequence[dict[str, Any]], validation: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]],
                 taxonomy: Taxonomy, strategy: str, seed: int, seed_size: int = 100, batch_size: int = 100,
                 max_labels: int = 1100, stop_size: int = 400, pool_ngrams: Any = None) -> list[dict[str, Any]]:
    """One learning curve: a list of rounds ``{"labels", "macro_f1", "micro_f1", "any_violation_f1",
    "stop_kappa", "positives_per_label", "negatives", "batch_mean_uncertainty"}``."""
    from training.baseline import TfidfBaseline
    from training.thresholds import tune_thresholds

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    texts = [r["text"] for r in pool]
    y_pool = label_matrix(pool, taxonomy)
    val_texts, y_val = [r["text"] for r in validation], label_matrix(validation, taxonomy)
    test_texts, y_test = [r["text"] for r in test], label_matrix(test, taxonomy)
    labelled = np.zeros(len(pool), dtype=bool)
    labelled[stratified_seed(y_pool, seed_size, seed)] = True
    rng = np.random.default_rng(10_000 + seed)
    stop_idx = np.sort(rng.choice(len(pool), size=min(stop_size, len(pool)), replace=False))
    if strategy == "diverse" and pool_ngrams is None:
        pool_ngrams = char_ngram_matrix(texts).tocsr()
    rounds: list[dict[str, Any]] = []
    previous_stop: np.ndarray | None = None
    kappas: list[float] = []
    batch_uncertainty: float | None = None
    while True:
        idx = np.flatnonzero(labelled)
        model = TfidfBaseline(seed=seed).fit([texts[i] for i in idx], y_pool[idx])
        val_probs = model.predict_proba(val_texts)
        tuned = tune_thresholds(y_val, val_probs, taxonomy.names)["thresholds"]
        thresholds = np.array([tuned[n] for n in taxonomy.names])
        test_pred = (model.predict_proba(test_texts) >= thresholds).astype(np.int64)
        unlabelled = np.flatnonzero(~labelled)
        need_pool = strategy != "random" and len(unlabelled) and len(idx) < max_labels
        score_idx = np.union1d(stop_idx, unlabelled) if need_pool else stop_idx
        pool_probs = np.zeros((len(pool), len(taxonomy)))
        pool_probs[score_idx] = model.predict_proba([texts[i] for i in score_idx])
        stop_pred = pool_probs[stop_idx] >= thresholds
        entry: dict[str, Any] = {"labels": len(idx), **f1_scores(y_test, test_pred),
                                 "positives_per_label": dict(zip(taxonomy.names, y_pool[idx].sum(axis=0).tolist(),
                                                                 strict=True)),
                                 "negatives": int((y_pool[idx].sum(axis=1) == 0).sum()),
                                 "batch_mean_uncertainty": batch_uncertainty}
        if previous_stop is not None:
            agreement = decision_agreement(previous_stop, stop_pred, taxonomy.names)
            entry["stop_kappa"] = agreement["kappa"]
            entry["stop_changed_texts"] = agreement["changed_texts"]
            kappas.append(agreement["kappa"])
            entry["stop_rule_met"] = should_stop(kappas)
        else:
            entry["stop_kappa"] = None
        rounds.append(entry)
        previous_stop = stop_pred
        if len(idx) >= max_labels or not len(unlabelled):
            return rounds
        n = min(batch_size, len(unlabelled), max_labels - len(idx))
        if strategy == "random":
            picks, _ = select_random(len(unlabelled), n, seed=int(rng.integers(1 << 31)))
        elif strategy == "uncertainty":
            picks, _ = select_uncertainty(pool_probs[unlabelled], thresholds, n)
        else:
            picks, _, _ = select_diverse(pool_probs[unlabelled], thresholds, n, pool_ngrams[unlabelled])
        chosen = unlabelled[picks]
        batch_uncertainty = float(text_uncertainty(pool_probs[chosen], thresholds)[0].mean()) \
            if strategy != "random" else None
        labelled[chosen] = True


def full_pool_reference(pool: Sequence[dict[str, Any]], validation: Sequence[dict[str, Any]],
                        test: Sequence[dict[str, Any]], taxonomy: Taxonomy, seed: int = 0) -> dict[str, Any]:
    """Scores of the same learner trained on every pool label (the ceiling of the curves)."""
    from training.baseline import TfidfBaseline
    from training.thresholds import tune_thresholds

    model = TfidfBaseline(seed=seed).fit([r["text"] for r in pool], label_matrix(pool, taxonomy))
    tuned = tune_thresholds(label_matrix(validation, taxonomy), model.predict_proba([r["text"] for r in validation]),
                            taxonomy.names)["thresholds"]
    pred = (model.predict_proba([r["text"] for r in test]) >= np.array([tuned[n] for n in taxonomy.names]))
    return {"labels": len(pool), **f1_scores(label_matrix(test, taxonomy), pred.astype(np.int64))}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Mean, min and max over seeds per strategy and label count; the area under each curve
    (mean score over the rounds), and the first label count whose mean macro-F1 reaches 95 %
    of the full-pool score."""
    out: dict[str, Any] = {}
    full = results["full_pool"]["macro_f1"]
    for strategy, runs in results["runs"].items():
        counts = [r["labels"] for r in next(iter(runs.values()))]
        s: dict[str, Any] = {"labels": counts}
        for metric in ("macro_f1", "micro_f1", "any_violation_f1", "stop_kappa"):
            first = 1 if metric == "stop_kappa" else 0  # no kappa before the second round
            table = np.array([[r[metric] for r in run[first:]] for run in runs.values()], dtype=float)
            lead: list[float | None] = [None] * first
            s[metric] = {"mean": lead + np.round(table.mean(axis=0), 4).tolist(),
                         "min": lead + np.round(table.min(axis=0), 4).tolist(),
                         "max": lead + np.round(table.max(axis=0), 4).tolist()}
            if metric != "stop_kappa":
                per_seed_area = table.mean(axis=1)
                s[metric]["area"] = round(float(per_seed_area.mean()), 4)
                s[metric]["area_per_seed"] = np.round(per_seed_area, 4).tolist()
        reached = [c for c, m in zip(counts, s["macro_f1"]["mean"], strict=True) if m >= 0.95 * full]
        s["labels_to_95pct_of_full_macro_f1"] = reached[0] if reached else None
        out[strategy] = s
    if "random" in out:  # paired by seed: each strategy minus random, over the curve and at the end
        for strategy, s in out.items():
            if strategy == "random":
                continue
            s["minus_random"] = {}
            for metric in ("macro_f1", "any_violation_f1"):
                area = np.array(s[metric]["area_per_seed"]) - np.array(out["random"][metric]["area_per_seed"])
                last = np.array([run[-1][metric] for run in results["runs"][strategy].values()]) - np.array(
                    [run[-1][metric] for run in results["runs"]["random"].values()])
                s["minus_random"][metric] = {
                    "area_mean": round(float(area.mean()), 4), "area_per_seed": np.round(area, 4).tolist(),
                    "area_seeds_better": int((area > 0).sum()),
                    "final_mean": round(float(last.mean()), 4), "final_per_seed": np.round(last, 4).tolist(),
                    "final_seeds_better": int((last > 0).sum())}
    return out


def plot_curves(results: dict[str, Any], path: str | Path) -> None:
    """Macro-F1, any-violation F1 and stop-set kappa against labels; lines are seed means, bands
    the seeds' min-max; the dashed grey line is the learner trained on the whole pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.6))
    panels = [("macro_f1", "test macro-F1"), ("any_violation_f1", "test any-violation F1"),
              ("stop_kappa", "stop-set kappa vs previous round")]
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for strategy, s in summary.items():
            color, style = STRATEGY_STYLE.get(strategy, ("#2ca02c", "-"))
            x = np.array(s["labels"])
            first = 1 if metric == "stop_kappa" else 0
            x = x[first:]
            mean, lo, hi = (np.array(s[metric][k][first:], dtype=float) for k in ("mean", "min", "max"))
            ax.plot(x, mean, style, color=color, label=strategy, lw=1.8)
            ax.fill_between(x, lo, hi, color=color, alpha=0.12, lw=0)
        if metric == "stop_kappa":
            ax.axhline(STOP_KAPPA, color="#999999", ls=":", lw=1)
        else:
            ax.axhline(results["full_pool"][metric], color="#999999", ls="--", lw=1,
                       label=f"all {results['full_pool']['labels']} pool labels")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("labelled texts", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    learner = results["config"]["learner"]
    fig.suptitle(f"Active learning vs random on the project's data ({learner}; "
                 f"{len(results['config']['seeds'])} seeds, mean and min-max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_simulation(data_dir: str | Path, taxonomy: Taxonomy, strategies: Sequence[str], seeds: Sequence[int],
                   seed_size: int, batch_size: int, max_labels: int, stop_size: int,
                   max_pool: int | None = None, verbose: bool = True) -> dict[str, Any]:
    """Every (strategy, seed) run plus the full-pool reference and the summary."""
    splits = load_splits(data_dir, taxonomy)
    pool = splits["train"]
    if max_pool is not None and max_pool < len(pool):
        keep = np.sort(np.random.default_rng(0).choice(len(pool), size=max_pool, replace=False))
        pool = [pool[i] for i in keep]
    ngrams = char_ngram_matrix([r["text"] for r in pool]).tocsr() if "diverse" in strategies else None
    results: dict[str, Any] = {
        "config": {"data_dir": str(data_dir), "dataset_version": describe_version(data_dir),
                   "pool": f"train split ({len(pool)} texts)",
                   "validation": len(splits["validation"]), "test": len(splits["test"]),
                   "strategies": list(strategies), "seeds": list(seeds), "seed_size": seed_size,
                   "batch_size": batch_size, "max_labels": max_labels, "stop_size": stop_size,
                   "learner": "TF-IDF + logistic regression baseline",
                   "thresholds": "tuned per label on the validation split every round"},
        "runs": {s: {} for s in strategies},
    }
    for seed in seeds:
        for strategy in strategies:
            started = time.time()
            curve = simulate_run(pool, splits["validation"], splits["test"], taxonomy, strategy, seed, seed_size,
                                 batch_size, max_labels, stop_size, ngrams)
            results["runs"][strategy][str(seed)] = curve
            if verbose:
                print(f"seed {seed} {strategy:12s} " + " ".join(f"{r['labels']}:{r['macro_f1']:.3f}" for r in curve)
                      + f"  ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    results["full_pool"] = full_pool_reference(pool, splits["validation"], splits["test"], taxonomy)
    results["summary"] = summarise(results)
    return results


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.al_simulation``."""
    parser = argparse.ArgumentParser(prog="python -m training.al_simulation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--taxonomy", default=None)
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--seed-size", type=int, default=100, help="stratified seed set drawn from the pool")
    parser.add_argument("--batch-size", type=int, default=100, help="texts 'annotated' per round")
    parser.add_argument("--max-labels", type=int, default=1100, help="stop after this many labelled texts")
    parser.add_argument("--stop-size", type=int, default=400, help="size of the fixed stop set")
    parser.add_argument("--max-pool", type=int, default=None, help="use only this many pool texts (quick runs)")
    parser.add_argument("--output", default="docs/active_learning_results.json")
    parser.add_argument("--plot", default="docs/active_learning_curves.png")
    parser.add_argument("--replot", action="store_true",
                        help="recompute the summary of an existing --output and redraw --plot (no simulation)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.al_simulation``."""
    from inference.modeldir import atomic_write_text

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.replot:
        results = json.loads(Path(args.output).read_text("utf-8"))
        results["summary"] = summarise(results)
        atomic_write_text(args.output, json.dumps(results, ensure_ascii=False, indent=1) + "\n")
        plot_curves(results, args.plot)
        print(f"recomputed the summary in {args.output} and wrote {args.plot}", file=sys.stderr)
        return 0
    if args.seed_size < 1 or args.batch_size < 1 or args.max_labels < args.seed_size:
        parser.error("need --seed-size >= 1, --batch-size >= 1 and --max-labels >= --seed-size")
    taxonomy = load_taxonomy(args.taxonomy)
    started = time.time()
    results = run_simulation(args.data_dir, taxonomy, args.strategies, args.seeds, args.seed_size, args.batch_size,
                             args.max_labels, args.stop_size, args.max_pool)
    results["config"]["wall_time_s"] = round(time.time() - started, 1)
    atomic_write_text(args.output, json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    if args.plot:
        plot_curves(results, args.plot)
    for strategy, s in results["summary"].items():
        print(f"{strategy:12s} mean macro-F1 over rounds {s['macro_f1']['area']:.3f}, at {s['labels'][-1]} labels "
              f"{s['macro_f1']['mean'][-1]:.3f}; any-violation F1 {s['any_violation_f1']['area']:.3f} / "
              f"{s['any_violation_f1']['mean'][-1]:.3f}", file=sys.stderr)
    print(f"full pool ({results['full_pool']['labels']} labels): macro-F1 {results['full_pool']['macro_f1']:.3f}, "
          f"any-violation F1 {results['full_pool']['any_violation_f1']:.3f}; wrote {args.output}"
          + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Linear probe: a logistic regression per label on the frozen features the head reads.

Two uses:

* **LP-FT** (Kumar et al. 2022, "Fine-tuning can distort pretrained features"): fit the
  classification layer on frozen features first, copy it into the head, then fine-tune. A
  randomly initialised head sends large, noisy gradients into the pretrained encoder during
  the first steps; a probed head starts where the features already point.
* **A yardstick**: the fine-tuned model should beat the probe of its own backbone. The probe's
  validation and test figures (thresholds tuned on validation) go into the model's metrics.

Features are what the head's final ``classifier`` layer receives (mean-pooled tokens or the
[CLS] pooler output), captured with a forward hook in eval mode, one vector per window; each
window carries its text's labels, and a text's score is the maximum over its windows, as in
inference.

    python -m training.linear_probe --model-name-or-path offline-me5-small --input-prefix "query: "
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.windows import WindowTokenizer

#: Inverse regularisation strengths tried, chosen by validation macro-F1.
C_GRID = (0.05, 0.2, 1.0, 5.0)


@dataclass
class ProbeFit:
    """Head weights in the feature space of the classifier layer, and how they were chosen."""

    weight: np.ndarray  # (labels, hidden)
    bias: np.ndarray  # (labels,)
    C: float
    validation_macro_f1_at_05: float


def window_features(model: Any, window_tok: WindowTokenizer, texts: Sequence[str],
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of ``model.classifier`` for every window of ``texts`` (eval mode, no gradients).

    Windows are sorted by length so each batch pads little."""
    import torch
    from tqdm.auto import tqdm

    from inference.text import normalize_text

    windows = window_tok.windows([normalize_text(t) for t in texts])
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    feats = np.zeros((len(windows), model.config.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.inference_mode(), tqdm(total=len(order), desc="probe features", unit="window",
                                          leave=False) as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = window_tok.pad([windows[i] for i in rows])
                captured.clear()
                model(**{k: torch.from_numpy(v).to(device) for k, v in batch.items()})
                feats[rows] = captured[0].float().cpu().numpy()
                bar.update(len(rows))
    finally:
        hook.remove()
        model.train(was_training)
    return feats, np.array([w.text_index for w in windows], dtype=np.int64)


def _fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    weight = np.zeros((y.shape[1], x.shape[1]), dtype=np.float64)
    bias = np.zeros(y.shape[1], dtype=np.float64)
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():  # a label without positives (quick runs): never fire
            bias[j] = -4.0 if y[0, j] == 0 else 4.0
            continue
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        lr.fit(z, y[:, j])
        weight[j] = lr.coef_[0] / std  # fold the standardisation into the layer
        bias[j] = lr.intercept_[0] - float(lr.coef_[0] @ (mean / std))
    return weight, bias


def text_scores(feats: np.ndarray, index: np.ndarray, n_texts: int, weight: np.ndarray,
                bias: np.ndarray) -> np.ndarray:
    """Probabilities per text: the maximum over its windows of the probe's sigmoid."""
    from inference.classifier import sigmoid
    from training.train import max_over_windows

    return sigmoid(max_over_windows(feats @ weight.T + bias, index, n_texts))


def fit_probe(train: tuple[np.ndarray, np.ndarray], y_train: np.ndarray, val: tuple[np.ndarray, np.ndarray],
              y_val: np.ndarray, labels: Sequence[str], seed: int = 42) -> ProbeFit:
    """Fit one probe per C in :data:`C_GRID`; keep the best validation macro-F1 at 0.5."""
    from training.train import classification_metrics

    x, index = train
    y_windows = y_train[index]
    best: ProbeFit | None = None
    for c in C_GRID:
        weight, bias = _fit(x, y_windows, c, seed)
        probs = text_scores(val[0], val[1], len(y_val), weight, bias)
        macro = classification_metrics(y_val, (probs >= 0.5).astype(int), labels)["macro_f1"]
        if best is None or macro > best.validation_macro_f1_at_05:
            best = ProbeFit(weight.astype(np.float32), bias.astype(np.float32), c, float(macro))
    assert best is not None
    return best


def init_head(model: Any, fit: ProbeFit) -> None:
    """Copy the probe into ``model.classifier`` (the LP step of LP-FT)."""
    import torch

    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(fit.weight))
        model.classifier.bias.copy_(torch.from_numpy(fit.bias))


def probe_report(fit: ProbeFit, splits: dict[str, tuple[tuple[np.ndarray, np.ndarray], np.ndarray]],
                 labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of the probe per split, at thresholds tuned on the validation split."""
    from training.thresholds import tune_thresholds
    from training.train import classification_metrics

    probs = {name: text_scores(f[0], f[1], len(y), fit.weight, fit.bias) for name, (f, y) in splits.items()}
    tuned = tune_thresholds(splits["validation"][1], probs["validation"], list(labels))["thresholds"]
    t = np.array([tuned[n] for n in labels])
    report: dict[str, Any] = {"C": fit.C}
    for name, (_, y) in splits.items():
        m = classification_metrics(y, (probs[name] >= t).astype(int), labels)
        report[name] = {k: m[k] for k in ("micro_f1", "macro_f1", "any_violation_f1")}
    return report


def linear_probe_init(model: Any, window_tok: WindowTokenizer, train: tuple[Sequence[str], np.ndarray],
                      validation: tuple[Sequence[str], np.ndarray], test: tuple[Sequence[str], np.ndarray] | None,
                      labels: Sequence[str], seed: int = 42, verbose: bool = True) -> dict[str, Any]:
    """The LP step of LP-FT: probe the frozen features, copy the probe into the head, report it.

    The test split, when given, is only scored (at thresholds tuned on validation), never used
    to choose anything: it is the yardstick the fine-tuned model has to beat.
    """
    parts = {"train": train, "validation": validation, **({"test": test} if test is not None else {})}
    data = {name: (window_features(model, window_tok, texts), y) for name, (texts, y) in parts.items()}
    fit = fit_probe(data["train"][0], data["train"][1], data["validation"][0], data["validation"][1], labels, seed)
    init_head(model, fit)
    report = probe_report(fit, {n: data[n] for n in data if n != "train"}, labels)
    if verbose:
        figures = " | ".join(f"{n}: micro-F1 {report[n]['micro_f1']:.3f} macro-F1 {report[n]['macro_f1']:.3f}"
                             for n in data if n != "train")
        print(f"linear probe (C={fit.C}) copied into the head; {figures}", flush=True)
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.linear_probe``."""
    parser = argparse.ArgumentParser(prog="python -m training.linear_probe",
                                     description="Measure a frozen backbone: a linear probe fitted on the "
                                                 "train split, reported on validation (and test with --test).")
    parser.add_argument("--model-name-or-path", default="offline-me5-small")
    parser.add_argument("--pooling", default="auto", choices=["auto", "cls", "mean"])
    parser.add_argument("--input-prefix", default="", help='e.g. "query: " for e5 (default: none)')
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--test", action="store_true", help="also report the test split (never tune on it)")
    parser.add_argument("--output", default=None, help="write the report as JSON here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.linear_probe``."""
    args = build_parser().parse_args(argv)

    from inference.taxonomy import load_taxonomy
    from training.backbone import BackboneUnavailableError, resolve_backbone
    from training.data import DEFAULT_DATA_DIR, label_matrix, load_splits
    from training.model_setup import load_model_and_tokenizer, resolve_pooling

    taxonomy = load_taxonomy()
    splits = load_splits(args.data_dir or DEFAULT_DATA_DIR, taxonomy)
    try:
        backbone = resolve_backbone(args.model_name_or_path)
    except BackboneUnavailableError as exc:
        raise SystemExit(f"error: {exc}") from exc
    pooling = resolve_pooling(args.pooling, backbone)
    tokenizer, model = load_model_and_tokenizer(backbone, taxonomy, pooling, args.input_prefix)
    window_tok = WindowTokenizer(tokenizer.backend_tokenizer, args.max_length, args.stride)
    window_tok.pad_id = int(tokenizer.pad_token_id or 0)
    names = ["train", "validation"] + (["test"] if args.test else [])
    data = {n: (window_features(model, window_tok, [r["text"] for r in splits[n]]),
                label_matrix(splits[n], taxonomy)) for n in names}
    fit = fit_probe(data["train"][0], data["train"][1], data["validation"][0], data["validation"][1],
                    taxonomy.names)
    report = {"backbone": args.model_name_or_path, "pooling": pooling, "input_prefix": args.input_prefix,
              "max_length": args.max_length,
              **probe_report(fit, {n: data[n] for n in names if n != "train"}, taxonomy.names)}
    print(json.dumps(report, indent=2))
    if args.output:
        from inference.modeldir import write_json

        write_json(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

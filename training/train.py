"""Fine-tune a multi-label classifier and write a self-contained model directory.

    python -m training.train --config configs/offline-minilm.yaml --output-dir models/minilm
    python -m training.train --model-name-or-path indobenchmark/indobert-base-p1 --output-dir models/indobert

Flags are parsed by ``transformers.HfArgumentParser`` from four dataclasses: this module's
:class:`ModelArguments`, :class:`DataArguments` and :class:`ClassifierArguments`, and
``transformers.TrainingArguments``. A YAML ``--config`` file may set any of them; a flag given on
the command line overrides the file, and the file overrides this project's defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inference.classifier import sigmoid
from inference.modeldir import (
    METRICS_FILE,
    THRESHOLDS_FILE,
    atomic_write_text,
    write_json,
)
from inference.taxonomy import REPO_TAXONOMY_PATH, TAXONOMY_FILENAME, Taxonomy, load_taxonomy
from inference.text import normalize_text
from inference.windows import WindowTokenizer
from training.auxiliary_training import add_target_columns, attach_for_training, auxiliary_metrics, class_weights
from training.backbone import BackboneUnavailableError, resolve_backbone
from training.cpu_precision import drop_emulated_bf16
from training.data import DEFAULT_DATA_DIR, dataset_stats, label_matrix, load_splits
from training.model_setup import (
    freeze_word_embeddings,
    load_model_and_tokenizer,
    resolve_pooling,
    save_tokenizer,
)

TRAINING_ARGS_FILE = "training_args.json"


@dataclass
class ModelArguments:
    """Which backbone to fine-tune and how texts are windowed."""

    model_name_or_path: str = field(
        default="indobenchmark/indobert-base-p1",
        metadata={"help": "Hub id, local directory, or a preset: 'offline-me5-small', 'offline-minilm'."},
    )
    pooling: str = field(default="auto", metadata={
        "help": "How the head summarises a window: 'mean' of the tokens, the 'cls' pooler, or 'auto' "
                "(the way the backbone was pretrained: mean for e5 and MiniLM, cls for IndoBERT)."})
    input_prefix: str = field(default="", metadata={
        "help": "Text put before every window, e.g. 'query: ' for e5; stored in tokenizer.json."})
    freeze_word_embeddings: bool = field(default=False, metadata={
        "help": "Keep the word-embedding matrix fixed (most of a multilingual model's parameters)."})
    train_on_all_windows: bool = field(default=False, metadata={
        "help": "Train on every window of long texts (each with its text's labels), not only the first."})
    max_length: int = field(default=256, metadata={"help": "Tokens per window (and per training text)."})
    stride: int = field(default=64, metadata={"help": "Overlap in tokens between windows of long texts."})
    hub_probe_timeout: float = field(
        default=5.0, metadata={"help": "Seconds to wait for the Hub before failing (offline check)."}
    )


@dataclass
class DataArguments:
    """Where the labelled data and the taxonomy are."""

    data_dir: str = field(default=str(DEFAULT_DATA_DIR),
                          metadata={"help": "Folder with train/validation/test .jsonl files."})
    taxonomy: str | None = field(default=None, metadata={"help": "taxonomy.yaml (default: data/taxonomy.yaml)."})
    extra_train_data: list[str] = field(default_factory=list, metadata={
        "help": "More training examples: JSONL files in the dataset schema added to the train split, e.g. "
                "data/real/train.jsonl (the real published passages' training part)."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random sample of N training examples (quick runs)."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random sample of N validation and N test examples."})


@dataclass
class ClassifierArguments:
    """Loss weighting, threshold tuning and run housekeeping."""

    config: str | None = field(default=None, metadata={"help": "YAML file with any of these flags."})
    use_pos_weight: bool = field(default=True, metadata={"help": "Weight positives per label by neg/pos."})
    pos_weight_cap: float = field(default=10.0, metadata={"help": "Upper bound of each label's pos_weight."})
    threshold_floor: float = field(default=0.2, metadata={"help": "Lowest threshold the tuner may choose."})
    threshold_min_positives: int = field(
        default=5, metadata={"help": "Labels with fewer validation positives keep 0.5."})
    linear_probe_init: bool = field(default=False, metadata={
        "help": "LP-FT: fit the head as a linear probe on frozen features before fine-tuning."})
    actor_loss_weight: float = field(default=0.0, metadata={
        "help": "Weight of the auxiliary actor head's loss (learns aktor_asn; 0 = no actor head)."})
    text_type_loss_weight: float = field(default=0.0, metadata={
        "help": "Weight of the auxiliary text-type head's loss (learns jenis_teks; 0 = no text-type head)."})
    auxiliary_class_weighting: str = field(default="none", metadata={
        "choices": ["none", "balanced"],
        "help": "Class weights of the auxiliary heads' cross-entropy: none, or balanced (inverse class "
                "frequency in training, capped at 10)."})
    calibrate: bool = field(default=True, metadata={
        "help": "Fit per-label Platt scaling on the validation split and fold it into the output layer."})
    calibration_min_examples: int = field(default=5, metadata={
        "help": "Labels with fewer validation positives or negatives keep raw scores."})
    early_stopping_patience: int = field(default=2, metadata={"help": "Epochs without macro-F1 gain before stopping."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-* folders after success."})
    model_name: str | None = field(default=None, metadata={"help": "Name shown in the model card."})


#: This project's defaults for ``TrainingArguments``; a config file or a flag overrides them.
TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 5,
    "learning_rate": 3e-5,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 64,
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "macro_f1",
    "greater_is_better": True,
    "save_total_limit": 2,
    "report_to": "none",
    # batches of similar length: far less padding, about twice as fast on CPU
    "train_sampling_strategy": "group_by_length",
    "seed": 42,
    # Token averaging across processes is meaningless for sequence classification and breaks
    # gloo (CPU) multi-process runs.
    "average_tokens_across_devices": False,
    "dataloader_num_workers": 0,
}


def _to_argv(options: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, list | tuple):
            argv.extend(str(v) for v in value)
        elif isinstance(value, bool):
            argv.append(str(value).lower())
        else:
            argv.append(str(value))
    return argv


def _device_defaults(cli: Sequence[str], config: dict[str, Any]) -> dict[str, Any]:
    """bf16 on CUDA GPUs that support it, else fp16 on CUDA; fp32 and no pinned memory on CPU."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        # use_cpu makes accelerate set up a gloo process group under torchrun (MULTI_CPU);
        # without it a 2-process CPU launch trains two independent models.
        return {"dataloader_pin_memory": False, "use_cpu": True}
    given = {"bf16", "fp16"} & (set(config) | {a.lstrip("-").replace("-", "_") for a in cli})
    if given:
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def parse_args(argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse defaults, then ``--config`` YAML, then flags (each overrides the one before)."""
    from transformers import HfArgumentParser, TrainingArguments

    cli = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(cli)
    config: dict[str, Any] = {}
    if known.config:
        path = Path(known.config)
        if not path.is_file():
            raise SystemExit(f"error: config file not found: {path}")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"error: {path} must be a YAML mapping of flag names to values")
        config = {str(k).replace("-", "_"): v for k, v in loaded.items()}
    flags = {a.split("=")[0].lstrip("-").replace("-", "_") for a in cli if a.startswith("--")}
    if "output_dir" not in flags and "output_dir" not in config:
        raise SystemExit("error: --output-dir is required (where the model directory is written)")
    dataclasses: Any = (ModelArguments, DataArguments, ClassifierArguments, TrainingArguments)
    parser = HfArgumentParser(dataclasses)
    defaults = {**TRAINING_DEFAULTS, **_device_defaults(cli, config)}
    full = _to_argv(defaults) + _to_argv(config) + cli
    try:
        model_args, data_args, cls_args, training_args = parser.parse_args_into_dataclasses(args=full)
    except ValueError as exc:  # e.g. unknown key in the config file
        raise SystemExit(f"error: {exc}") from exc
    drop_emulated_bf16(training_args)
    for flag in ("max_train_samples", "max_eval_samples"):
        value = getattr(data_args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"error: --{flag.replace('_', '-')} must be at least 1, got {value}")
    if not 0 <= model_args.stride <= model_args.max_length // 2 - 2:
        raise SystemExit(f"error: --stride {model_args.stride} must be between 0 and half of "
                         f"--max-length {model_args.max_length} minus 2")
    return model_args, data_args, cls_args, training_args


# --------------------------------------------------------------------------- datasets
def _windowed_rows(texts: Sequence[str], labels: np.ndarray,
                   tok: WindowTokenizer) -> tuple[dict[str, list[Any]], np.ndarray]:
    """Rows of an evaluation dataset: one per window, each with its text's labels."""
    windows = tok.windows(texts)
    rows: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "token_type_ids": [], "labels": []}
    for w in windows:
        rows["input_ids"].append(w.input_ids)
        rows["attention_mask"].append([1] * len(w.input_ids))
        rows["token_type_ids"].append(w.type_ids)
        rows["labels"].append(labels[w.text_index].astype(np.float32).tolist())
    return rows, np.array([w.text_index for w in windows], dtype=np.int64)


def max_over_windows(window_scores: np.ndarray, text_index: np.ndarray, n_texts: int) -> np.ndarray:
    """Aggregate window scores to text scores by taking each label's maximum."""
    out = np.full((n_texts, window_scores.shape[1]), -np.inf, dtype=np.float64)
    np.maximum.at(out, text_index, window_scores)
    return out


def compute_pos_weight(y: np.ndarray, cap: float) -> np.ndarray:
    """Per-label ``negatives / positives`` from the training labels, capped at ``cap``."""
    pos = y.sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    weight = np.where(pos > 0, neg / np.maximum(pos, 1.0), cap)
    return np.clip(weight, 1.0, cap).astype(np.float32)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Multi-label metrics through the repository's local ``evaluate`` module."""
    from training.metrics import load_metric

    metric = load_metric("multilabel_classification")
    return dict(metric.compute(predictions=y_pred.astype(int).tolist(),
                               references=y_true.astype(int).tolist(), label_names=list(labels)))


# --------------------------------------------------------------------------- trainer
def build_trainer_class() -> type:
    """A ``Trainer`` whose loss is BCE-with-logits with optional per-label ``pos_weight``."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class WeightedBCETrainer(Trainer):
        def __init__(self, *args: Any, pos_weight: np.ndarray | None = None,
                     auxiliary_weights: dict[str, float] | None = None,
                     auxiliary_class_weights: dict[str, list[float] | None] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pos_weight = None if pos_weight is None else torch.tensor(pos_weight)
            self.auxiliary_weights = dict(auxiliary_weights or {})
            self.auxiliary_class_weights = dict(auxiliary_class_weights or {})
            # Our loss is a per-batch mean: let the Trainer divide it for gradient accumulation.
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            from training.auxiliary_training import auxiliary_loss

            labels = inputs.pop("labels")
            targets = {k: inputs.pop(k) for k in list(inputs) if k.endswith("_labels")}
            outputs = model(**inputs)
            logits = outputs.logits.float()  # under bf16 autocast (CPU or GPU) the loss stays fp32
            weight = None if self.pos_weight is None else self.pos_weight.to(logits.device, logits.dtype)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), pos_weight=weight)
            if self.auxiliary_weights:
                extra = auxiliary_loss(model, targets, self.auxiliary_weights, self.auxiliary_class_weights)
                loss = loss if extra is None else loss + extra
            return (loss, outputs) if return_outputs else loss

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            # Evaluation maps window predictions back to texts by position, so it must keep the
            # dataset order; the Trainer would otherwise reuse group_by_length for evaluation.
            if eval_dataset is None:
                return None
            return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    return WeightedBCETrainer


def build_summary_callback(total_epochs: float) -> Any:
    """A callback that prints one line per evaluated epoch."""
    from transformers import TrainerCallback

    class EpochSummary(TrainerCallback):
        def __init__(self) -> None:
            self.start = time.time()
            self.last_loss: float | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.last_loss = float(logs["loss"])

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                        **kw: Any) -> None:
            if not state.is_world_process_zero or not metrics:
                return
            loss = f"{self.last_loss:.4f}" if self.last_loss is not None else "n/a"
            print(
                f"[epoch {state.epoch:.0f}/{total_epochs:.0f}] train loss {loss} | val loss "
                f"{metrics.get('eval_loss', float('nan')):.4f} | val macro-F1 "
                f"{metrics.get('eval_macro_f1', 0):.3f} micro-F1 {metrics.get('eval_micro_f1', 0):.3f} "
                f"any-violation F1 {metrics.get('eval_any_violation_f1', 0):.3f} | "
                f"{time.time() - self.start:.0f} s elapsed",
                flush=True,
            )

    return EpochSummary()


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """``auto`` means the newest ``checkpoint-*`` in ``output_dir`` (or a fresh start)."""
    if value is None or value.lower() in {"", "none", "false"}:
        return None
    if value.lower() in {"auto", "latest", "true"}:
        from transformers.trainer_utils import get_last_checkpoint

        if not Path(output_dir).is_dir():
            return None
        return get_last_checkpoint(output_dir)
    if not Path(value).is_dir():
        raise SystemExit(f"error: checkpoint not found: {value}")
    return value


# --------------------------------------------------------------------------- main
def subset_records(records: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """At most ``limit`` records, drawn at random (seeded) and kept in file order.

    The dataset files are grouped by writing batch and kind, so their first N lines are not a
    sample: a quick run on them would see almost no positives of some labels.
    """
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def _split_metrics(y: np.ndarray, probs: np.ndarray, taxonomy: Taxonomy,
                   thresholds: dict[str, float]) -> dict[str, Any]:
    """Classification metrics at ``thresholds`` and the calibration error of ``probs``."""
    from training.metric_suite import calibration

    t = np.array([thresholds[n] for n in taxonomy.names])
    metrics = classification_metrics(y, (probs >= t).astype(int), taxonomy.names)
    metrics["num_examples"] = len(y)
    calib = calibration(y, probs, taxonomy.names)
    metrics["calibration"] = {k: calib[k] for k in ("overall_ece", "macro_ece")}
    return metrics


def run(model_args: Any, data_args: Any, cls_args: Any, training_args: Any) -> dict[str, Any]:
    """Train, tune thresholds, evaluate and write the model directory. Returns metrics."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, set_seed

    from inference.auxiliary_heads import save_model_dir
    from inference.classifier import Classifier
    from inference.publish import PushRequest
    from training.dataset_version import describe_version
    from training.model_card import render_model_card
    from training.thresholds import tune_thresholds

    started = time.time()
    push = PushRequest.take_from(training_args)  # the Trainer never pushes; the final directory is published once
    set_seed(training_args.seed)
    taxonomy = load_taxonomy(data_args.taxonomy)
    splits = load_splits(data_args.data_dir, taxonomy)
    train_records = subset_records(splits["train"], data_args.max_train_samples, training_args.seed)
    extra_by_file = read_extra_train_data(data_args.extra_train_data, taxonomy)
    train_records = train_records + [r for records in extra_by_file.values() for r in records]
    val_records = subset_records(splits["validation"], data_args.max_eval_samples, training_args.seed)
    test_records = subset_records(splits["test"], data_args.max_eval_samples, training_args.seed)
    try:
        backbone = resolve_backbone(model_args.model_name_or_path, model_args.hub_probe_timeout)
    except BackboneUnavailableError as exc:
        raise SystemExit(f"error: {exc}") from exc
    pooling = resolve_pooling(model_args.pooling, backbone)
    tokenizer, model = load_model_and_tokenizer(backbone, taxonomy, pooling, model_args.input_prefix)
    frozen = freeze_word_embeddings(model) if model_args.freeze_word_embeddings else 0
    aux_weights = {"actor": cls_args.actor_loss_weight, "text_type": cls_args.text_type_loss_weight}
    aux_tasks = attach_for_training(model, aux_weights, training_args)
    window_tok = WindowTokenizer(tokenizer.backend_tokenizer.__class__.from_str(
        tokenizer.backend_tokenizer.to_str()), model_args.max_length, model_args.stride)
    if tokenizer.pad_token_id is not None:
        window_tok.pad_id = int(tokenizer.pad_token_id)

    train_texts = [normalize_text(r["text"]) for r in train_records]
    lengths = window_tok.count_tokens(train_texts)
    truncated_share = float(np.mean([n > model_args.max_length for n in lengths]))
    y_train = label_matrix(train_records, taxonomy).astype(np.float32)
    if model_args.train_on_all_windows:
        train_rows, train_index = _windowed_rows(train_texts, y_train, window_tok)
        add_target_columns(train_rows, train_records, aux_tasks, train_index.tolist())
    else:
        encoded = tokenizer(train_texts, truncation=True, max_length=model_args.max_length)
        train_rows = {**{k: encoded[k] for k in encoded}, "labels": y_train.tolist()}
        add_target_columns(train_rows, train_records, aux_tasks)
    train_ds = Dataset.from_dict(train_rows)
    val_texts = [normalize_text(r["text"]) for r in val_records]
    y_val = label_matrix(val_records, taxonomy)
    val_rows, val_index = _windowed_rows(val_texts, y_val, window_tok)
    val_ds = Dataset.from_dict(val_rows)
    is_main = training_args.process_index == 0
    if is_main:
        print(f"backbone: {backbone.requested} ({backbone.note}); train {len(train_records)}, "
              f"validation {len(val_records)} ({len(val_index)} windows), test {len(test_records)}; "
              f"{truncated_share:.1%} of training texts exceed {model_args.max_length} tokens (training uses "
              f"{'every window' if model_args.train_on_all_windows else 'their first window'}: {len(train_ds)} "
              f"rows; evaluation scores every window); pooling {pooling}, input prefix "
              f"{model_args.input_prefix!r}, {frozen:,} word-embedding parameters frozen; auxiliary heads: "
              + (", ".join(f"{t.name} (loss weight {aux_weights[t.name]})" for t in aux_tasks) or "none"),
              flush=True)
    probe_record = None
    if cls_args.linear_probe_init:
        from training.linear_probe import linear_probe_init

        test_part = ([r["text"] for r in test_records], label_matrix(test_records, taxonomy)) if test_records else None
        probe_record = linear_probe_init(model, window_tok, (train_texts, y_train), (val_texts, y_val), test_part,
                                         taxonomy.names, training_args.seed, verbose=is_main)

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        text_scores = sigmoid(max_over_windows(np.asarray(logits), val_index, len(val_records)))
        m = classification_metrics(y_val, (text_scores >= 0.5).astype(int), taxonomy.names)
        return {"macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"],
                "any_violation_f1": m["any_violation_f1"]}

    pos_weight = compute_pos_weight(y_train, cls_args.pos_weight_cap) if cls_args.use_pos_weight else None
    trainer_cls = build_trainer_class()
    callbacks = [build_summary_callback(training_args.num_train_epochs)]
    if training_args.load_best_model_at_end and cls_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cls_args.early_stopping_patience))
    trainer = trainer_cls(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        pos_weight=pos_weight,
        auxiliary_weights={t.name: aux_weights[t.name] for t in aux_tasks},
        auxiliary_class_weights={t.name: class_weights(train_records, t, cls_args.auxiliary_class_weighting)
                                 for t in aux_tasks},
    )
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    if is_main and resume:
        print(f"resuming from {resume}", flush=True)
    train_result = trainer.train(resume_from_checkpoint=resume)

    out = Path(training_args.output_dir)
    model.config.taxonomy_version = taxonomy.version
    model.config.inference_max_length = model_args.max_length
    model.config.inference_stride = model_args.stride
    model.config.backbone = backbone.requested
    model.config.offline_standin = backbone.offline_standin
    stale_onnx = out / "onnx"
    if trainer.is_world_process_zero() and stale_onnx.is_dir():
        # An ONNX export of the previous weights would be picked by backend="auto" and score
        # with the old model; the user re-exports after training.
        shutil.rmtree(stale_onnx)
        print(f"removed the stale ONNX export {stale_onnx} (re-run python -m inference.export)", flush=True)
    trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return {}
    if aux_tasks:  # the heads go beside model.safetensors, not inside it
        save_model_dir(trainer.model, out, aux_weights)

    save_tokenizer(tokenizer, out, model_args.input_prefix)
    (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; training_args.json replaces it
    eval_model = trainer.model
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clf = Classifier.from_model(eval_model, tokenizer, taxonomy, max_length=model_args.max_length,
                                stride=model_args.stride, device=device)
    batch = training_args.per_device_eval_batch_size
    val_logits = clf.predict_logits([r["text"] for r in val_records], batch_size=batch)
    # Thresholds are tuned on the raw scores; calibration then maps scores and thresholds through
    # the same increasing function, so it changes what a score means but never a decision.
    val_probs = sigmoid(val_logits)
    tuned = tune_thresholds(y_val, val_probs, taxonomy.names, floor=cls_args.threshold_floor,
                            min_positives=cls_args.threshold_min_positives)
    tuned["taxonomy_version"] = taxonomy.version
    calibration = None
    if cls_args.calibrate:
        from training.calibration import calibrate_thresholds, calibration_record, fit_platt, fold_into_head

        scale, bias = fit_platt(val_logits, y_val, cls_args.calibration_min_examples)
        fold_into_head(eval_model, scale, bias)
        save_model_dir(eval_model, out)  # the calibrated head replaces the trained one
        tuned = calibrate_thresholds(tuned, scale, bias, taxonomy.names)
        val_probs = sigmoid(val_logits * scale + bias)  # what the folded head now outputs
        calibration = calibration_record(val_logits, y_val, scale, bias, taxonomy.names)
        print(f"calibrated the scores (Platt, validation): log loss {calibration['validation_log_loss_before']:.3f}"
              f" -> {calibration['validation_log_loss_after']:.3f}", flush=True)
    thresholds = tuned["thresholds"]
    val_metrics = _split_metrics(y_val, val_probs, taxonomy, thresholds)
    test_preds = clf.predict([r["text"] for r in test_records], batch_size=batch)
    test_metrics = _split_metrics(
        label_matrix(test_records, taxonomy),
        np.array([[p.scores[n] for n in taxonomy.names] for p in test_preds]), taxonomy, thresholds,
    ) if test_records else {}
    if aux_tasks:
        val_metrics["auxiliary"] = auxiliary_metrics(val_records, clf.predict([r["text"] for r in val_records],
                                                                               batch_size=batch), aux_tasks)
        test_metrics["auxiliary"] = auxiliary_metrics(test_records, test_preds, aux_tasks) if test_records else {}
    wall = time.time() - started
    run_info = {
        "model_name": cls_args.model_name or out.name,
        "backbone": backbone.requested,
        "backbone_note": backbone.note,
        "offline_standin": backbone.offline_standin,
        "pooling": pooling,
        "input_prefix": model_args.input_prefix,
        "frozen_word_embedding_parameters": frozen,
        "train_on_all_windows": model_args.train_on_all_windows,
        "train_rows": len(train_ds),
        "linear_probe": probe_record,
        "auxiliary_loss_weights": {t.name: aux_weights[t.name] for t in aux_tasks},
        "auxiliary_class_weighting": cls_args.auxiliary_class_weighting if aux_tasks else None,
        "use_pos_weight": cls_args.use_pos_weight,
        "pos_weight_cap": cls_args.pos_weight_cap,
        "calibration": calibration,
        "pos_weight": None if pos_weight is None else dict(zip(taxonomy.names, pos_weight.tolist(), strict=True)),
        "max_length": model_args.max_length,
        "stride": model_args.stride,
        "truncated_share_train": truncated_share,
        "epochs": float(trainer.state.epoch or 0),
        "global_step": int(trainer.state.global_step),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_val_macro_f1_at_0.5": trainer.state.best_metric,
        "history": [
            {k: v for k, v in entry.items() if k in {"epoch", "step", "loss", "eval_loss", "eval_macro_f1",
                                                     "eval_micro_f1", "eval_any_violation_f1"}}
            for entry in trainer.state.log_history if "eval_loss" in entry or "loss" in entry
        ],
        "train_loss": float(train_result.training_loss),
        "wall_time_s": wall,
        "seed": training_args.seed,
        "world_size": training_args.world_size,
        "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "num_train": len(train_records),
        "extra_train_data": {path: len(records) for path, records in extra_by_file.items()},
        "num_validation": len(val_records),
        "num_test": len(test_records),
        "taxonomy_version": taxonomy.version,
        "data_summary": _data_summary(splits, taxonomy, data_args.data_dir),
        "dataset_version": describe_version(data_args.data_dir),
        "model_dir_hint": str(out),
    }
    metrics = {"validation": val_metrics, "test": test_metrics, "train": run_info}
    write_json(out / THRESHOLDS_FILE, tuned)
    write_json(out / METRICS_FILE, metrics)
    taxonomy_src = Path(taxonomy.source) if taxonomy.source else REPO_TAXONOMY_PATH
    atomic_write_text(out / TAXONOMY_FILENAME, taxonomy_src.read_text(encoding="utf-8"))
    write_json(out / TRAINING_ARGS_FILE, {
        "model": asdict(model_args), "data": asdict(data_args), "classifier": asdict(cls_args),
        "training": json.loads(training_args.to_json_string()),
    })
    atomic_write_text(out / "README.md", render_model_card(
        taxonomy=taxonomy, metrics=metrics, thresholds=tuned, run=run_info))
    if not cls_args.keep_checkpoints:
        for ckpt in out.glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)
    print(
        f"done in {wall / 60:.1f} min, {run_info['epochs']:.0f} epochs. validation: micro-F1 "
        f"{val_metrics['micro_f1']:.3f} macro-F1 {val_metrics['macro_f1']:.3f} any-violation F1 "
        f"{val_metrics['any_violation_f1']:.3f}"
        + (f" | test: micro-F1 {test_metrics['micro_f1']:.3f} macro-F1 {test_metrics['macro_f1']:.3f} "
           f"any-violation F1 {test_metrics['any_violation_f1']:.3f}" if test_metrics else "")
        + f"\nmodel directory: {out}",
        flush=True,
    )
    if push is not None:
        push.publish(out)
    return metrics


def read_extra_train_data(paths: Sequence[str], taxonomy: Taxonomy) -> dict[str, list[dict[str, Any]]]:
    """Records of each ``--extra-train-data`` file, keyed by the path as given (errors name the
    file and line). A relative path that does not exist from the working directory is read from
    the repository root, so a config file's ``data/real/train.jsonl`` works from any directory."""
    from training.data import REPO_ROOT, DataError, read_jsonl

    by_file: dict[str, list[dict[str, Any]]] = {}
    for given in paths:
        path = given
        if not Path(path).exists() and not Path(path).is_absolute() and (REPO_ROOT / path).is_file():
            path = str(REPO_ROOT / path)
        try:
            by_file[given] = read_jsonl(path, taxonomy)
        except (DataError, FileNotFoundError) as exc:
            raise SystemExit(f"error: --extra-train-data: {exc}") from exc
    return by_file


def _data_summary(splits: dict[str, list[dict[str, Any]]], taxonomy: Taxonomy, data_dir: str) -> str:
    everything = [r for recs in splits.values() for r in recs]
    s = dataset_stats(everything, taxonomy)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    return (
        f"`{data_dir}`: {s['total']} texts ({sizes}); {s['negatives']} negatives "
        f"({s['negatives'] / max(s['total'], 1):.0%}), {s['multi_label']} with two or more labels. "
        "The project's dataset is hand-written (not scraped) in varied Indonesian registers; "
        "see data/DATACARD.md."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.train``."""
    model_args, data_args, cls_args, training_args = parse_args(argv)
    run(model_args, data_args, cls_args, training_args)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())

"""Training and scoring the auxiliary heads (actor, text type) beside the violation labels.

The heads learn the dataset's side fields ``aktor_asn`` and ``jenis_teks`` on the shared encoder
(see :mod:`inference.auxiliary`). Each has its own loss weight: the total loss is the violation
BCE plus ``weight * cross-entropy`` per head; a weight of 0 leaves the head out. Model selection
still uses violation macro-F1 on validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inference.auxiliary import KNOWN_TASKS, AuxiliaryTask

#: targets of records whose side field is missing; the cross-entropy ignores them
IGNORE_INDEX = -100


def target_column(task: AuxiliaryTask) -> str:
    """The dataset column that holds a task's class indices."""
    return f"{task.name}_labels"


def active_tasks(weights: Mapping[str, float]) -> list[AuxiliaryTask]:
    """The tasks with a positive loss weight, in :data:`KNOWN_TASKS` order.

    Raises ``SystemExit`` with the flag name when a weight is negative.
    """
    for name, weight in weights.items():
        if weight < 0:
            raise SystemExit(f"error: --{name.replace('_', '-')}-loss-weight must be >= 0, got {weight}")
    return [task for name, task in KNOWN_TASKS.items() if weights.get(name, 0.0) > 0]


def attach_for_training(model: Any, weights: Mapping[str, float], training_args: Any) -> list[AuxiliaryTask]:
    """Attach a fresh head for every task with a positive weight; returns those tasks.

    With heads, the Trainer must keep the dataset's target columns, which it would otherwise
    drop because the model's ``forward`` does not name them.
    """
    tasks = active_tasks(weights)
    if tasks:
        from inference.auxiliary_heads import attach_auxiliary_heads

        attach_auxiliary_heads(model, tasks)
        training_args.remove_unused_columns = False
    return tasks


def targets(records: Sequence[dict[str, Any]], task: AuxiliaryTask) -> list[int]:
    """Class index of each record's side field (:data:`IGNORE_INDEX` where it is missing)."""
    index = {c: i for i, c in enumerate(task.classes)}
    return [index.get(str(r.get(task.field)), IGNORE_INDEX) for r in records]


def add_target_columns(rows: dict[str, list[Any]], records: Sequence[dict[str, Any]],
                       tasks: Sequence[AuxiliaryTask], text_index: Sequence[int] | None = None) -> None:
    """Add one target column per task to dataset ``rows`` (in place); ``text_index`` maps each
    row to its record when rows are windows of longer texts."""
    for task in tasks:
        per_text = targets(records, task)
        rows[target_column(task)] = per_text if text_index is None else [per_text[i] for i in text_index]


#: ``--auxiliary-class-weighting`` choices
CLASS_WEIGHTINGS = ("none", "balanced")


def class_weights(records: Sequence[dict[str, Any]], task: AuxiliaryTask, scheme: str = "none",
                  cap: float = 10.0) -> list[float] | None:
    """Per-class weights of a head's cross-entropy, from the training records.

    ``"balanced"``: ``n / (k * count)`` over the records whose side field is known (scikit-learn's
    "balanced" rule), capped at ``cap`` so a class seen a handful of times cannot dominate; a
    class absent from training gets 1. ``"none"``: ``None`` (every class weighs 1).
    """
    if scheme not in CLASS_WEIGHTINGS:
        raise SystemExit(f"error: --auxiliary-class-weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, "
                         f"got {scheme!r}")
    if scheme == "none":
        return None
    known = [t for t in targets(records, task) if t != IGNORE_INDEX]
    counts = [known.count(i) for i in range(len(task.classes))]
    present = sum(1 for c in counts if c)
    return [min(cap, len(known) / (present * c)) if c else 1.0 for c in counts]


def auxiliary_loss(model: Any, inputs: dict[str, Any], weights: Mapping[str, float],
                   per_class_weights: Mapping[str, Sequence[float] | None] | None = None) -> Any:
    """Weighted cross-entropy of every head for the model's latest forward pass.

    Pops each task's target column from ``inputs``; a batch in which a task has no target
    contributes nothing for it (instead of a NaN). ``per_class_weights`` (from
    :func:`class_weights`) weighs each head's classes.
    """
    import torch

    from inference.auxiliary_heads import auxiliary_logits

    logits = auxiliary_logits(model)
    total = None
    for name, weight in weights.items():
        target = inputs.pop(f"{name}_labels", None)
        if target is None or weight <= 0 or name not in logits or not bool((target != IGNORE_INDEX).any()):
            continue
        per_class = (per_class_weights or {}).get(name)
        loss = weight * torch.nn.functional.cross_entropy(
            logits[name].float(), target.to(logits[name].device), ignore_index=IGNORE_INDEX,
            weight=None if per_class is None else torch.tensor(per_class, dtype=torch.float32,
                                                               device=logits[name].device))
        total = loss if total is None else total + loss
    return total


def auxiliary_metrics(records: Sequence[dict[str, Any]], predictions: Sequence[Any],
                      tasks: Sequence[AuxiliaryTask]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix of each head.

    ``predictions`` are :class:`inference.classifier.Prediction` objects; records without the
    side field, and empty texts (no auxiliary output), are left out of that head's figures.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    report: dict[str, Any] = {}
    for task in tasks:
        pairs = [(r.get(task.field), getattr(p, task.name).label) for r, p in zip(records, predictions, strict=True)
                 if r.get(task.field) in task.classes and getattr(p, task.name) is not None]
        if not pairs:
            continue
        gold, pred = zip(*pairs, strict=True)
        classes = list(task.classes)
        per_class = f1_score(gold, pred, labels=classes, average=None, zero_division=0)
        report[task.name] = {
            "field": task.field,
            "num_examples": len(pairs),
            "accuracy": float(accuracy_score(gold, pred)),
            "macro_f1": float(f1_score(gold, pred, labels=classes, average="macro", zero_division=0)),
            "per_class_f1": {c: float(f) for c, f in zip(classes, per_class, strict=True)},
            "classes": classes,
            "confusion_matrix": confusion_matrix(gold, pred, labels=classes).tolist(),
        }
    return report


def confusion_markdown(entry: Mapping[str, Any]) -> str:
    """A confusion matrix as a markdown table (rows: gold class, columns: predicted)."""
    classes = entry["classes"]
    rows = ["| gold \\ predicted | " + " | ".join(f"`{c}`" for c in classes) + " | F1 |",
            "|---|" + "---:|" * (len(classes) + 1)]
    for c, counts in zip(classes, entry["confusion_matrix"], strict=True):
        rows.append(f"| `{c}` | " + " | ".join(str(n) for n in counts) + f" | {entry['per_class_f1'][c]:.3f} |")
    return "\n".join(rows)


def auxiliary_markdown(report: Mapping[str, Any]) -> str:
    """The auxiliary heads' section of an evaluation report."""
    lines = ["The actor and text-type heads read words, not employment records: `asn_eksplisit` means the "
             "text says the actor is a civil servant.", ""]
    for name, entry in report.items():
        lines += [f"### `{name}` (field `{entry['field']}`): accuracy {entry['accuracy']:.3f}, macro-F1 "
                  f"{entry['macro_f1']:.3f}, {entry['num_examples']} texts", "", confusion_markdown(entry), ""]
    return "\n".join(lines)


def majority_accuracy(records: Sequence[dict[str, Any]], task: AuxiliaryTask) -> float:
    """Accuracy of always predicting the most frequent class (a floor to read the head against)."""
    from collections import Counter

    values = Counter(r.get(task.field) for r in records if r.get(task.field) in task.classes)
    if not values:
        return float("nan")
    return values.most_common(1)[0][1] / sum(values.values())

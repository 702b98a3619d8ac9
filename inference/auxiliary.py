"""Auxiliary outputs: who acts (``actor``) and what kind of text it is (``text_type``).

A reviewer triaging flags asks two questions before the category: is the actor a civil servant
at all, and is the text a report of conduct or an explainer of the rules? A model trained with
auxiliary heads (``python -m training.train --actor-loss-weight ... --text-type-loss-weight ...``)
answers both beside the labels. The heads read the same pooled vector as the violation head;
their weights live in ``auxiliary_heads.safetensors`` beside ``model.safetensors``, described by
the ``auxiliary_heads`` entry of ``config.json``, so the violation head still loads in a plain
``transformers`` pipeline.

The actor output reads words, not employment records: ``asn_eksplisit`` means the text *says*
the actor is a civil servant, not that they are one.

This module is light (numpy only); the torch side is :mod:`inference.auxiliary_heads`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``config.json`` key describing the auxiliary heads of a model directory
AUXILIARY_CONFIG_KEY = "auxiliary_heads"
AUXILIARY_WEIGHTS_FILE = "auxiliary_heads.safetensors"

#: the classes of the dataset's side fields (data/GUIDELINES.md section 1), in output order
ACTOR_CLASSES = ("asn_eksplisit", "asn_indikasi", "bukan_asn", "tidak_diketahui")
TEXT_TYPE_CLASSES = ("unggahan_pelaku", "laporan_dugaan", "berita_aturan_sosialisasi", "lainnya")


@dataclass(frozen=True)
class AuxiliaryTask:
    """One auxiliary head: its output name, the dataset field it learns, and its classes."""

    name: str
    field: str
    classes: tuple[str, ...]


#: the auxiliary tasks this package knows, by output name
KNOWN_TASKS: dict[str, AuxiliaryTask] = {
    "actor": AuxiliaryTask("actor", "aktor_asn", ACTOR_CLASSES),
    "text_type": AuxiliaryTask("text_type", "jenis_teks", TEXT_TYPE_CLASSES),
}


@dataclass
class AuxiliaryPrediction:
    """The predicted class of one auxiliary output and the probability of every class."""

    label: str
    scores: dict[str, float]

    @property
    def score(self) -> float:
        """Probability of the predicted class."""
        return self.scores[self.label]

    def to_dict(self) -> dict[str, Any]:
        """``{"label": ..., "scores": {class: probability}}``."""
        return {"label": self.label, "scores": dict(self.scores)}


def task_config(tasks: list[AuxiliaryTask], loss_weights: Mapping[str, float]) -> dict[str, Any]:
    """The ``config.json`` entry that describes the auxiliary heads of a model directory."""
    return {
        "weights_file": AUXILIARY_WEIGHTS_FILE,
        "tasks": [{"name": t.name, "field": t.field, "classes": list(t.classes),
                   "loss_weight": float(loss_weights.get(t.name, 0.0))} for t in tasks],
        "pooled_input": "the input of the violation classifier layer (the pooled window vector)",
    }


def tasks_from_config(config: Mapping[str, Any], where: str = "config.json") -> list[AuxiliaryTask]:
    """The auxiliary tasks described in a model's config (``[]`` for a model without them).

    Raises ``ValueError`` naming ``where`` when the entry is malformed or names an unknown task.
    """
    entry = config.get(AUXILIARY_CONFIG_KEY)
    if entry is None:
        return []
    if not isinstance(entry, Mapping) or not isinstance(entry.get("tasks"), list):
        raise ValueError(f"{where}: '{AUXILIARY_CONFIG_KEY}' must be an object with a 'tasks' list")
    tasks = []
    for i, raw in enumerate(entry["tasks"]):
        if not isinstance(raw, Mapping) or raw.get("name") not in KNOWN_TASKS:
            raise ValueError(f"{where}: {AUXILIARY_CONFIG_KEY}.tasks[{i}] must name one of "
                             f"{', '.join(KNOWN_TASKS)}, got {raw!r:.80}")
        classes = tuple(raw.get("classes") or ())
        if not classes or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"{where}: {AUXILIARY_CONFIG_KEY}.tasks[{i}] needs a non-empty 'classes' list")
        tasks.append(AuxiliaryTask(str(raw["name"]), str(raw.get("field", KNOWN_TASKS[raw["name"]].field)),
                                   classes))
    return tasks


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for large logits)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def to_prediction(probs: np.ndarray, task: AuxiliaryTask) -> AuxiliaryPrediction:
    """An :class:`AuxiliaryPrediction` from one text's class probabilities."""
    scores = {c: float(p) for c, p in zip(task.classes, probs, strict=True)}
    return AuxiliaryPrediction(task.classes[int(np.argmax(probs))], scores)

"""The torch side of the auxiliary outputs (see :mod:`inference.auxiliary`).

:func:`attach_auxiliary_heads` adds one linear layer per task to a ``transformers``
sequence-classification model as the submodule ``auxiliary_heads``. A forward pre-hook on the
model's ``classifier`` keeps the vector the violation head reads (the pooled window, after
dropout), so every head sees exactly what the violation head sees, whatever the pooling; after a
forward pass, :func:`auxiliary_logits` applies the heads to it. Being a submodule, the heads are
trained, checkpointed and moved between devices with the model; :func:`save_model_dir` writes
them beside ``model.safetensors`` instead of inside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from inference.auxiliary import (
    AUXILIARY_CONFIG_KEY,
    AUXILIARY_WEIGHTS_FILE,
    AuxiliaryTask,
    task_config,
    tasks_from_config,
)

SUBMODULE = "auxiliary_heads"


class AuxiliaryHeads(torch.nn.Module):
    """One linear layer per auxiliary task on the pooled window vector."""

    def __init__(self, hidden_size: int, tasks: list[AuxiliaryTask]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.heads = torch.nn.ModuleDict({t.name: torch.nn.Linear(hidden_size, len(t.classes)) for t in tasks})
        #: the pooled input of the violation classifier in the latest forward pass
        self.features: torch.Tensor | None = None

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every task for a batch of pooled vectors."""
        return {name: head(features) for name, head in self.heads.items()}


def _remember_features(heads: AuxiliaryHeads) -> Any:
    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        heads.features = args[0]
    return hook


def attach_auxiliary_heads(model: Any, tasks: list[AuxiliaryTask]) -> AuxiliaryHeads:
    """Add freshly initialised auxiliary heads to ``model`` (in place) and return them.

    Raises ``ValueError`` when the model's ``classifier`` is not a linear layer on a pooled
    vector (heads such as RoBERTa's, which read the token sequence, are not supported).
    """
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        raise ValueError(
            f"auxiliary heads need a model whose 'classifier' is a linear layer on the pooled vector; "
            f"{type(model).__name__} has {type(classifier).__name__}")
    if hasattr(model, SUBMODULE):
        raise ValueError(f"{type(model).__name__} already has auxiliary heads")
    heads = AuxiliaryHeads(classifier.in_features, tasks)
    heads.to(device=classifier.weight.device, dtype=classifier.weight.dtype)
    setattr(model, SUBMODULE, heads)
    classifier.register_forward_pre_hook(_remember_features(heads))
    return heads


def get_heads(model: Any) -> AuxiliaryHeads | None:
    """The auxiliary heads of ``model`` (unwrapping DDP-style ``.module``), or ``None``."""
    inner = getattr(model, "module", model)
    heads = getattr(inner, SUBMODULE, None)
    return heads if isinstance(heads, AuxiliaryHeads) else None


def auxiliary_logits(model: Any) -> dict[str, torch.Tensor]:
    """Logits of every auxiliary task for the batch of the model's latest forward pass."""
    heads = get_heads(model)
    if heads is None:
        return {}
    if heads.features is None:
        raise RuntimeError("auxiliary_logits() needs a forward pass of the model first")
    return heads(heads.features)


@contextmanager
def without_auxiliary_heads(model: Any) -> Iterator[AuxiliaryHeads | None]:
    """Detach the heads for the duration of the block (so ``save_pretrained`` leaves them out)."""
    heads = get_heads(model)
    inner = getattr(model, "module", model)
    if heads is not None:
        delattr(inner, SUBMODULE)
    try:
        yield heads
    finally:
        if heads is not None:
            setattr(inner, SUBMODULE, heads)


def save_model_dir(model: Any, out: str | Path, loss_weights: Mapping[str, float] | None = None) -> None:
    """``save_pretrained`` the violation model, and the auxiliary heads (if any) beside it.

    ``config.json`` gets the ``auxiliary_heads`` entry describing them; a model without heads
    has the entry removed, so a directory never describes heads it does not have.
    """
    from safetensors.torch import save_file

    target = Path(out)
    heads = get_heads(model)
    inner = getattr(model, "module", model)
    if heads is None:
        if hasattr(inner.config, AUXILIARY_CONFIG_KEY):
            delattr(inner.config, AUXILIARY_CONFIG_KEY)
        inner.save_pretrained(str(target))
        (target / AUXILIARY_WEIGHTS_FILE).unlink(missing_ok=True)
        return
    previous = getattr(inner.config, AUXILIARY_CONFIG_KEY, None) or {}
    weights = dict(loss_weights) if loss_weights is not None else {
        t["name"]: t.get("loss_weight", 0.0) for t in previous.get("tasks", [])}
    setattr(inner.config, AUXILIARY_CONFIG_KEY, task_config(heads.tasks, weights))
    with without_auxiliary_heads(model):
        inner.save_pretrained(str(target))
    tensors = {k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}
    tmp = target / f".{AUXILIARY_WEIGHTS_FILE}.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, target / AUXILIARY_WEIGHTS_FILE)


def load_auxiliary_heads(model: Any, model_dir: str | Path) -> AuxiliaryHeads | None:
    """Attach and load the heads a model directory describes; ``None`` when it has none."""
    from safetensors.torch import load_file

    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dict(model.config)
    where = str(Path(model_dir) / "config.json")
    tasks = tasks_from_config(config, where)
    if not tasks:
        return None
    file = Path(model_dir) / AUXILIARY_WEIGHTS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{where} describes auxiliary heads but {file} is missing")
    heads = attach_auxiliary_heads(model, tasks)
    state = load_file(str(file))
    try:
        heads.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{file} does not match the heads {where} describes: {exc}") from exc
    heads.to(device=model.classifier.weight.device, dtype=model.classifier.weight.dtype)
    return heads


class WithAuxiliaryOutputs(torch.nn.Module):
    """A model returning ``(logits, <task>_logits, ...)`` in one forward pass (for ONNX export).

    Positional inputs follow ``input_names`` (a subset of ``input_ids``, ``attention_mask``,
    ``token_type_ids``).
    """

    def __init__(self, model: Any, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        heads = get_heads(model)
        self.task_names = [t.name for t in heads.tasks] if heads is not None else []

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model(**dict(zip(self.input_names, inputs, strict=True))).logits
        aux = auxiliary_logits(self.model)
        return (logits, *(aux[name] for name in self.task_names))

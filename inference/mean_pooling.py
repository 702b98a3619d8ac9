"""A BERT classifier that reads the mean of the token vectors instead of the [CLS] pooler.

Sentence encoders such as multilingual-e5 and all-MiniLM were pretrained to summarise a text as
the average of its token vectors; their checkpoints carry no trained [CLS] pooler, so
``BertForSequenceClassification`` would start from a random pooler on a token the encoder never
learned to use as a summary. This head pools the way those backbones were trained.

The parameter names are those of ``BertForSequenceClassification`` minus the pooler
(``bert.*``, ``classifier.*``), and ``config.json`` records ``"pooling": "mean"``. Plain
``transformers`` does not know this class: ``AutoModelForSequenceClassification`` would load
such a directory with a random pooler and score differently, so load it with
:func:`load_sequence_classifier` (which the classifier, the ONNX export and the Ray path use) or
use the ONNX file, which contains the pooling.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

#: ``config.pooling`` values: "cls" is the standard transformers head.
POOLING_CHOICES = ("cls", "mean")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where ``attention_mask`` is 1 (special tokens included, as e5 does)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class BertForMeanPooledSequenceClassification(BertPreTrainedModel):
    """BERT encoder, masked mean pooling, dropout and a linear layer (one logit per label)."""

    config_class = BertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.config.pooling = "mean"
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = torch.nn.Linear(config.hidden_size, int(config.num_labels or 2))
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Logits of shape (batch, num_labels); with ``labels``, the multi-label BCE loss too."""
        if attention_mask is None:
            assert input_ids is not None
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = None
        if labels is not None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def load_sequence_classifier(model_dir: str, with_auxiliary: bool = True, **kwargs: Any) -> Any:
    """Load a classifier directory with the head its ``config.json`` names (safetensors only).

    ``"pooling": "mean"`` loads :class:`BertForMeanPooledSequenceClassification`; anything else
    goes through ``AutoModelForSequenceClassification``. Auxiliary heads the directory describes
    (:mod:`inference.auxiliary`) are attached unless ``with_auxiliary`` is false.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from inference.auxiliary_heads import load_auxiliary_heads

    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    if getattr(config, "pooling", "cls") == "mean":
        if config.model_type != "bert":
            raise ValueError(f"{model_dir}: mean pooling is implemented for BERT encoders, not {config.model_type!r}")
        model = BertForMeanPooledSequenceClassification.from_pretrained(model_dir, use_safetensors=True, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, use_safetensors=True, trust_remote_code=False, **kwargs)
    if with_auxiliary:
        load_auxiliary_heads(model, model_dir)
    return model

"""Build the model and tokenizer to fine-tune: head pooling, input prefix, frozen embeddings.

Kept apart from :mod:`training.train` so the recipe choices (how the head pools, which prefix
the backbone expects, what stays frozen) live in one place with their reasons.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference.input_prefix import apply_input_prefix
from inference.taxonomy import Taxonomy
from training.backbone import Backbone


def pretrained_pooling(backbone_path: str) -> str:
    """How the backbone was pretrained to summarise a text: ``"mean"`` or ``"cls"``.

    Sentence-transformers directories say so in ``1_Pooling/config.json``; the offline e5 image
    records ``pretrained_pooling`` in its ``config.json``; anything else (IndoBERT) is ``"cls"``.
    """
    path = Path(backbone_path)
    pooling_cfg = path / "1_Pooling" / "config.json"
    if pooling_cfg.is_file():
        cfg = json.loads(pooling_cfg.read_text(encoding="utf-8"))
        return "mean" if cfg.get("pooling_mode_mean_tokens") else "cls"
    config = path / "config.json"
    if config.is_file():
        return str(json.loads(config.read_text(encoding="utf-8")).get("pretrained_pooling", "cls"))
    return "cls"


def resolve_pooling(requested: str, backbone: Backbone) -> str:
    """``auto`` becomes the backbone's pretrained pooling; ``cls`` and ``mean`` are kept."""
    if requested not in {"auto", "cls", "mean"}:
        raise SystemExit(f"error: --pooling must be auto, cls or mean, got {requested!r}")
    return pretrained_pooling(backbone.path) if requested == "auto" else requested


def load_model_and_tokenizer(backbone: Backbone, taxonomy: Taxonomy, pooling: str,
                             input_prefix: str = "") -> tuple[Any, Any]:
    """Tokenizer (with ``input_prefix`` in its post-processor) and a freshly headed classifier."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from inference.mean_pooling import BertForMeanPooledSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(backbone.path, local_files_only=backbone.local_files_only)
    if not getattr(tokenizer, "is_fast", False):
        raise SystemExit(f"error: {backbone.requested} has no fast tokenizer (tokenizer.json); "
                         "this project needs one for windowing and ONNX inference.")
    if input_prefix.strip():
        apply_input_prefix(tokenizer.backend_tokenizer, input_prefix)
    kwargs: dict[str, Any] = {
        "local_files_only": backbone.local_files_only,
        "num_labels": len(taxonomy),
        "problem_type": "multi_label_classification",
        "id2label": taxonomy.id2label,
        "label2id": taxonomy.label2id,
    }
    if pooling == "mean":
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(backbone.path, local_files_only=backbone.local_files_only).model_type
        if model_type != "bert":
            raise SystemExit(f"error: --pooling mean needs a BERT backbone; {backbone.requested} is {model_type!r} "
                             "(use --pooling cls)")
        model = BertForMeanPooledSequenceClassification.from_pretrained(backbone.path, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(backbone.path, trust_remote_code=False, **kwargs)
    model.config.pooling = pooling
    model.config.input_prefix = input_prefix
    return tokenizer, model


def freeze_word_embeddings(model: Any) -> int:
    """Stop training the word-embedding matrix; return how many parameters were frozen.

    For multilingual vocabularies it is most of the model (96 M of e5-small's 117 M parameters):
    freezing it removes its gradients and optimizer state, and keeps the rows of tokens that the
    small training set never shows aligned with the rest.
    """
    weight = model.get_input_embeddings().weight
    weight.requires_grad_(False)
    return int(weight.numel())


def save_tokenizer(tokenizer: Any, out_dir: Path, input_prefix: str) -> None:
    """``save_pretrained`` and, with a prefix, mark the tokenizer as generic.

    Model-specific tokenizer classes (``XLMRobertaTokenizer``) rebuild their post-processor on
    load and would drop the prefix; the generic fast tokenizer loads ``tokenizer.json`` as written.
    """
    tokenizer.save_pretrained(str(out_dir))
    if input_prefix.strip():
        cfg_path = out_dir / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

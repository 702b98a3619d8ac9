"""The input prefix a model was trained with, stored in its tokenizer so nothing can forget it.

e5 models were trained with a ``"query: "`` or ``"passage: "`` prefix on every input. A prefix
applied by hand in one code path and forgotten in another would score texts differently from
training. So the prefix is written into the tokenizer's post-processor (``tokenizer.json``), next
to the special tokens: every path that tokenizes with the model's ``tokenizer.json`` (training,
evaluation, :class:`inference.Classifier` on both backends, the CLI, Ray, and a plain
``transformers`` ``AutoTokenizer``) adds it, and to every window of a long text, not only the
first. ``config.json`` records it as ``input_prefix`` and :func:`check_input_prefix` refuses a
directory whose tokenizer does not add it.
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import Tokenizer, processors

from inference.compact_unigram import CompactUnigramTokenizer

AnyTokenizer = Tokenizer | CompactUnigramTokenizer

#: Name of the prefix entry in the post-processor's special tokens.
PREFIX_ENTRY = "INPUT_PREFIX"


def prefix_ids(tokenizer: AnyTokenizer, prefix: str) -> list[int]:
    """Token ids of ``prefix`` on its own (no special tokens)."""
    return list(tokenizer.encode(prefix.strip(), add_special_tokens=False).ids)


def _special_frame(tokenizer: AnyTokenizer) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Special tokens the current post-processor puts before and after a single text."""
    probe = "x"
    plain = tokenizer.encode(probe, add_special_tokens=False)
    full = tokenizer.encode(probe, add_special_tokens=True)
    n = len(plain.ids)
    start = next((i for i in range(len(full.ids) - n + 1) if full.ids[i:i + n] == plain.ids), None)
    if start is None:
        raise ValueError("cannot locate the text inside the tokenizer's special-token template")
    pairs = list(zip(full.tokens, full.ids, strict=True))
    return pairs[:start], pairs[start + n:]


def apply_input_prefix(tokenizer: Tokenizer, prefix: str) -> None:
    """Make ``tokenizer`` add ``prefix`` after its leading special tokens on every encoding.

    Windows cut from a long text (truncation with overflow) each get the prefix too, because the
    post-processor runs on every window.
    """
    if not prefix.strip():
        return
    if PREFIX_ENTRY in json.loads(tokenizer.to_str()).get("post_processor", {}).get("special_tokens", {}):
        raise ValueError("this tokenizer already adds an input prefix")
    lead, trail = _special_frame(tokenizer)
    ids = prefix_ids(tokenizer, prefix)
    tokens = [tokenizer.id_to_token(i) for i in ids]
    specials: dict[str, int] = {tok: i for tok, i in lead + trail}
    head = " ".join(tok for tok, _ in lead)
    tail = " ".join(tok for tok, _ in trail)
    tail_b = " ".join(f"{tok}:1" for tok, _ in trail)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{head} {PREFIX_ENTRY} $A {tail}".strip(),
        pair=f"{head} {PREFIX_ENTRY} $A {tail} $B:1 {tail_b}".strip(),
        special_tokens=[*specials.items(), {"id": PREFIX_ENTRY, "ids": ids, "tokens": tokens}],
    )


def check_input_prefix(tokenizer: AnyTokenizer, config: dict[str, Any], source: str) -> None:
    """Raise ``ValueError`` when ``config["input_prefix"]`` is set but the tokenizer does not add it."""
    prefix = config.get("input_prefix") or ""
    if not prefix.strip():
        return
    ids = prefix_ids(tokenizer, prefix)
    lead, _ = _special_frame(tokenizer)
    lead_ids = [i for _, i in lead]
    if lead_ids[-len(ids):] != ids:
        raise ValueError(
            f"{source}: config.json says the model was trained with the input prefix {prefix!r}, but "
            "its tokenizer.json does not add it; the directory is inconsistent (re-save the tokenizer "
            "from training, or retrain)")

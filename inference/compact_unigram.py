"""SentencePiece-Unigram tokenisation with a small memory footprint.

The ``tokenizers`` library keeps a Unigram vocabulary in a byte trie. For the 250,002 pieces of
multilingual-e5 (the XLM-R vocabulary) that trie takes about 290 MB of resident memory, more than
the whole int8 ONNX model. :class:`CompactUnigramTokenizer` does the same work with the vocabulary
in one Python dict (about 80 MB):

1. split off the added tokens (``<s>``, ``<mask>``...) on the raw text, leftmost-longest;
2. normalise and pre-tokenise every other segment with the library's own normalizer and
   pre-tokenizer objects, rebuilt from ``tokenizer.json``;
3. cut each word with the Viterbi search of the library's ``Unigram::encode_optimized``: the same
   scores, the same order of candidates and tie-breaking, unknown characters scored at the lowest
   score minus 10 and consecutive unknowns fused into one token;
4. truncate with stride into overflowing windows and add the post-processor's special tokens
   (``TemplateProcessing``, ``RobertaProcessing`` or ``BertProcessing``) to every window.

It offers the subset of the ``tokenizers.Tokenizer`` interface that :class:`inference.windows.WindowTokenizer`
and :mod:`inference.input_prefix` use, and produces the library's ids token for token: a test
compares both on every text of the dataset and on random Unicode. :func:`supports` says whether a
``tokenizer.json`` is one this module reproduces; anything else stays with the library.
"""

from __future__ import annotations

import array
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Vocabularies at least this large use the compact tokenizer by default (XLM-R has 250,002).
COMPACT_MIN_VOCAB = 100_000
#: Penalty of an unknown character below the lowest piece score (``K_UNK_PENALTY`` in tokenizers).
UNK_PENALTY = 10.0
#: Words whose segmentation is remembered (the library keeps a similar cache).
WORD_CACHE_SIZE = 50_000

_PROCESSORS = {"TemplateProcessing", "RobertaProcessing", "BertProcessing"}


@dataclass
class CompactEncoding:
    """One encoded window: the fields of ``tokenizers.Encoding`` this project reads."""

    ids: list[int]
    type_ids: list[int]
    tokens: list[str]
    overflowing: list[CompactEncoding] = field(default_factory=list)


def unsupported_reason(raw: dict[str, Any]) -> str | None:
    """Why this parsed ``tokenizer.json`` cannot be reproduced here, or ``None`` when it can."""
    model = raw.get("model") or {}
    if model.get("type") != "Unigram":
        return f"model type {model.get('type')!r} is not Unigram"
    if model.get("byte_fallback"):
        return "byte_fallback is set"
    if model.get("unk_id") is None:
        return "the Unigram model has no unk_id"
    for token in raw.get("added_tokens") or []:
        if token.get("normalized") or token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            return f"added token {token.get('content')!r} is normalized or strips/matches words"
    processor = raw.get("post_processor")
    if processor is not None and processor.get("type") not in _PROCESSORS:
        return f"post-processor {processor.get('type')!r} is not supported"
    truncation = raw.get("truncation")
    if truncation and truncation.get("direction", "Right") != "Right":
        return "truncation direction is not Right"
    return None


def supports(raw: dict[str, Any]) -> bool:
    """True when :class:`CompactUnigramTokenizer` reproduces this parsed ``tokenizer.json``."""
    return unsupported_reason(raw) is None


def _frame(processor: dict[str, Any] | None) -> tuple[list[tuple[str, list[int], list[str], int]], int]:
    """The single-sequence template as (kind, ids, tokens, type_id) items, and the index of the text."""
    if processor is None:
        return [("A", [], [], 0)], 0
    kind = processor["type"]
    if kind == "TemplateProcessing":
        specials = processor.get("special_tokens", {})
        items: list[tuple[str, list[int], list[str], int]] = []
        for item in processor["single"]:
            if "Sequence" in item:
                if item["Sequence"]["id"] != "A":
                    raise ValueError("a single-sequence template that reads sequence B")
                items.append(("A", [], [], int(item["Sequence"]["type_id"])))
            else:
                special = specials[item["SpecialToken"]["id"]]
                items.append(("S", [int(i) for i in special["ids"]], list(special["tokens"]),
                              int(item["SpecialToken"]["type_id"])))
        return items, next(i for i, it in enumerate(items) if it[0] == "A")
    # RobertaProcessing and BertProcessing: [cls] text [sep]
    cls_token, cls_id = processor["cls"]
    sep_token, sep_id = processor["sep"]
    return [("S", [int(cls_id)], [cls_token], 0), ("A", [], [], 0), ("S", [int(sep_id)], [sep_token], 0)], 1


class CompactUnigramTokenizer:
    """A ``tokenizer.json`` with a Unigram model, run with the vocabulary in a Python dict."""

    def __init__(self, raw: dict[str, Any]) -> None:
        reason = unsupported_reason(raw)
        if reason is not None:
            raise ValueError(f"this tokenizer.json is not supported by the compact tokenizer: {reason}")
        from tokenizers import Tokenizer

        model = raw["model"]
        vocab: list[list[Any]] = model["vocab"]
        # Normalizer and pre-tokenizer objects from the library, on a one-piece stand-in model.
        shell = dict(raw, model={"type": "Unigram", "unk_id": 0, "vocab": [[vocab[model["unk_id"]][0], 0.0]]},
                     added_tokens=[], post_processor=None, truncation=None, padding=None)
        stand_in = Tokenizer.from_str(json.dumps(shell))
        self._normalizer = stand_in.normalizer
        self._pre_tokenizer = stand_in.pre_tokenizer
        self._ids: dict[str, int] = {}
        for index, (piece, _) in enumerate(vocab):
            self._ids[piece] = index  # a duplicate piece keeps its last id, as in tokenizers
        self._scores = array.array("d", (float(score) for _, score in vocab))
        self._pieces = [piece for piece, _ in vocab]
        self._unk_id = int(model["unk_id"])
        self._unk_score = min(self._scores) - UNK_PENALTY
        self._max_piece = max(len(piece) for piece in self._pieces)
        added = {str(t["content"]): int(t["id"]) for t in raw.get("added_tokens") or []}
        self._added = added
        self._added_pattern = (re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)))
                               if added else None)
        for content, index in added.items():
            if index >= len(self._pieces):
                self._pieces.extend([""] * (index + 1 - len(self._pieces)))
            self._pieces[index] = content
        self._template, self._text_at = _frame(raw.get("post_processor"))
        self._n_special = sum(len(item[1]) for item in self._template)
        self._truncation: tuple[int, int] | None = None
        trunc = raw.get("truncation")
        if trunc:
            self.enable_truncation(int(trunc["max_length"]), int(trunc.get("stride", 0)))
        self._cache: dict[str, tuple[list[int], list[str]]] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> CompactUnigramTokenizer:
        """Read a ``tokenizer.json``."""
        return cls(json.loads(Path(path).read_bytes()))

    # ------------------------------------------------------------ the tokenizers-like interface
    def num_special_tokens_to_add(self, is_pair: bool = False) -> int:
        """Tokens the post-processor adds around a single text."""
        if is_pair:
            raise NotImplementedError("the compact tokenizer encodes single texts only")
        return self._n_special

    def no_padding(self) -> None:
        """Padding is done per batch by :class:`inference.windows.WindowTokenizer`."""

    def enable_truncation(self, max_length: int, stride: int = 0) -> None:
        """Cut texts into windows of ``max_length`` tokens (special tokens included) overlapping by ``stride``."""
        if max_length - self._n_special <= stride:
            raise ValueError(f"stride={stride} must be smaller than max_length={max_length} minus "
                             f"{self._n_special} special tokens")
        self._truncation = (max_length, stride)

    def no_truncation(self) -> None:
        """Encode whole texts."""
        self._truncation = None

    def token_to_id(self, token: str) -> int | None:
        """Id of a piece or added token."""
        return self._added.get(token, self._ids.get(token))

    def id_to_token(self, index: int) -> str | None:
        """Piece or added token of an id."""
        return self._pieces[index] if 0 <= index < len(self._pieces) else None

    def get_vocab_size(self) -> int:
        """Number of ids."""
        return len(self._pieces)

    def encode(self, text: str, add_special_tokens: bool = True) -> CompactEncoding:
        """Encode one text; windows beyond the first are in ``overflowing`` when truncation is on."""
        ids, tokens = self._text_ids(text)
        parts = [(ids, tokens)]
        if self._truncation is not None:
            max_length, stride = self._truncation
            size = max_length - (self._n_special if add_special_tokens else 0)
            if len(ids) > size:
                parts = [(ids[a:b], tokens[a:b]) for a, b in _window_ranges(len(ids), size, stride)]
        windows = [self._frame(p_ids, p_tokens) if add_special_tokens else
                   CompactEncoding(p_ids, [0] * len(p_ids), p_tokens) for p_ids, p_tokens in parts]
        windows[0].overflowing = windows[1:]
        return windows[0]

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[CompactEncoding]:
        """Encode texts one by one (the work holds the GIL either way)."""
        return [self.encode(text, add_special_tokens) for text in texts]

    # ------------------------------------------------------------ the steps
    def _frame(self, ids: list[int], tokens: list[str]) -> CompactEncoding:
        out_ids: list[int] = []
        out_types: list[int] = []
        out_tokens: list[str] = []
        for kind, item_ids, item_tokens, type_id in self._template:
            if kind == "A":
                item_ids, item_tokens = ids, tokens
            out_ids.extend(item_ids)
            out_tokens.extend(item_tokens)
            out_types.extend([type_id] * len(item_ids))
        return CompactEncoding(out_ids, out_types, out_tokens)

    def _text_ids(self, text: str) -> tuple[list[int], list[str]]:
        ids: list[int] = []
        tokens: list[str] = []
        start = 0
        matches = self._added_pattern.finditer(text) if self._added_pattern is not None else ()
        for match in matches:
            self._segment_ids(text[start:match.start()], ids, tokens)
            ids.append(self._added[match.group()])
            tokens.append(match.group())
            start = match.end()
        self._segment_ids(text[start:], ids, tokens)
        return ids, tokens

    def _segment_ids(self, segment: str, ids: list[int], tokens: list[str]) -> None:
        if not segment:
            return
        normalized = self._normalizer.normalize_str(segment) if self._normalizer is not None else segment
        words = (self._pre_tokenizer.pre_tokenize_str(normalized) if self._pre_tokenizer is not None
                 else [(normalized, (0, len(normalized)))])
        for word, _ in words:
            cached = self._cache.get(word)
            if cached is None:
                pieces = self.segment(word)
                cached = ([self._ids.get(p, self._unk_id) for p in pieces], pieces)
                if len(self._cache) >= WORD_CACHE_SIZE:
                    self._cache.clear()
                self._cache[word] = cached
            ids.extend(cached[0])
            tokens.extend(cached[1])

    def segment(self, word: str) -> list[str]:
        """The best-scoring pieces of one pre-tokenized word (``Unigram::encode_optimized``)."""
        n = len(word)
        if n == 0:
            return []
        ids, scores, unk_score, max_piece = self._ids, self._scores, self._unk_score, self._max_piece
        best = [0.0] * (n + 1)
        starts: list[int] = [-1] * (n + 1)
        unknown = [False] * (n + 1)
        for begin in range(n):
            so_far = best[begin]
            has_single = False
            for end in range(begin + 1, min(begin + max_piece, n) + 1):
                index = ids.get(word[begin:end])
                if index is None:
                    continue
                score = scores[index] + so_far
                if starts[end] < 0 or score > best[end]:
                    best[end], starts[end], unknown[end] = score, begin, False
                if end == begin + 1:
                    has_single = True
            if not has_single:
                score = unk_score + so_far
                end = begin + 1
                if starts[end] < 0 or score > best[end]:
                    best[end], starts[end], unknown[end] = score, begin, True
        pieces: list[str] = []
        end = n
        unk_end = -1  # end of a run of unknown characters being fused
        while end > 0:
            begin = starts[end]
            if unknown[end]:
                if unk_end < 0:
                    unk_end = end
            else:
                if unk_end >= 0:
                    pieces.append(word[end:unk_end])
                    unk_end = -1
                pieces.append(word[begin:end])
            end = begin
        if unk_end >= 0:
            pieces.append(word[:unk_end])
        pieces.reverse()
        return pieces


def _window_ranges(length: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges of overflowing windows, as ``Encoding::truncate`` cuts them (direction right)."""
    ranges = []
    for start in range(0, length, size - stride):
        stop = min(start + size, length)
        ranges.append((start, stop))
        if stop == length:
            break
    return ranges


def load_tokenizer(path: str | Path, engine: str = "auto") -> Any:
    """A ``tokenizers.Tokenizer`` or a :class:`CompactUnigramTokenizer` for ``tokenizer.json``.

    ``engine``: ``"tokenizers"`` always uses the library; ``"compact"`` requires this module
    (``ValueError`` naming the reason when the file is not supported); ``"auto"`` uses it for
    supported Unigram vocabularies of at least :data:`COMPACT_MIN_VOCAB` pieces.
    """
    from tokenizers import Tokenizer

    if engine not in {"auto", "compact", "tokenizers"}:
        raise ValueError(f"tokenizer engine must be 'auto', 'compact' or 'tokenizers', got {engine!r}")
    path = Path(path)
    if engine == "tokenizers":
        return Tokenizer.from_file(str(path))
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    reason = unsupported_reason(raw)
    if engine == "compact":
        if reason is not None:
            raise ValueError(f"{path}: the compact tokenizer cannot run this file: {reason}")
        return CompactUnigramTokenizer(raw)
    if reason is None and len(raw["model"]["vocab"]) >= COMPACT_MIN_VOCAB:
        return CompactUnigramTokenizer(raw)
    del raw
    return Tokenizer.from_str(text)

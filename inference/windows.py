"""Tokenisation into overlapping windows and per-batch dynamic padding.

Both backends and the training evaluation use this module, so a text is cut into exactly the
same windows everywhere. A text longer than ``max_length`` tokens is split into windows that
overlap by ``stride`` tokens; each window gets the model's special tokens. Nothing is silently
truncated: the classifier scores every window and takes each label's maximum.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from inference.backends.base import MODEL_INPUTS
from inference.compact_unigram import CompactUnigramTokenizer, load_tokenizer

#: Either engine: the ``tokenizers`` library, or the compact Unigram one for large vocabularies.
TextTokenizer = Tokenizer | CompactUnigramTokenizer

_PAD_CANDIDATES = ("[PAD]", "<pad>", "<PAD>")


@dataclass(frozen=True)
class Window:
    """Token ids of one window and the index of the text it came from."""

    text_index: int
    input_ids: list[int]
    type_ids: list[int]


def _pad_id(tokenizer: TextTokenizer, tokenizer_dir: Path | None) -> int:
    if tokenizer_dir is not None:
        cfg_path = tokenizer_dir / "tokenizer_config.json"
        if cfg_path.is_file():
            pad = json.loads(cfg_path.read_text(encoding="utf-8")).get("pad_token")
            if isinstance(pad, dict):
                pad = pad.get("content")
            pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
            if pad_id is not None:
                return int(pad_id)
    for token in _PAD_CANDIDATES:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


class WindowTokenizer:
    """A tokenizer (``tokenizers.Tokenizer`` or :class:`CompactUnigramTokenizer`) configured for
    overlapping windows."""

    def __init__(
        self,
        tokenizer: TextTokenizer,
        max_length: int,
        stride: int,
        tokenizer_dir: Path | None = None,
    ) -> None:
        special = tokenizer.num_special_tokens_to_add(is_pair=False)
        if max_length <= special + 1:
            raise ValueError(f"max_length={max_length} leaves no room for text tokens")
        if not 0 <= stride < (max_length - special) // 2 + 1:
            raise ValueError(
                f"stride={stride} must be >= 0 and at most half of max_length={max_length} "
                "minus special tokens"
            )
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length, stride=stride)
        self.max_length = max_length
        self.stride = stride
        self.pad_id = _pad_id(tokenizer, tokenizer_dir)

    @classmethod
    def from_dir(cls, model_dir: str | Path, max_length: int, stride: int,
                 engine: str = "auto") -> WindowTokenizer:
        """Load ``tokenizer.json`` from a model directory.

        ``engine`` (see :func:`inference.compact_unigram.load_tokenizer`): ``"auto"`` runs large
        Unigram vocabularies (multilingual-e5) with the compact tokenizer, which gives the same ids
        in about 80 MB instead of about 280 MB; ``"tokenizers"`` always uses the library (faster).
        """
        path = Path(model_dir)
        return cls(load_tokenizer(path / "tokenizer.json", engine), max_length, stride, path)

    def windows(self, texts: Sequence[str], offset: int = 0) -> list[Window]:
        """Encode texts into windows; ``text_index`` counts from ``offset``."""
        out: list[Window] = []
        encodings: list[Any] = self.tokenizer.encode_batch(list(texts))  # either engine's encodings
        for i, enc in enumerate(encodings):
            for part in (enc, *enc.overflowing):
                out.append(Window(offset + i, list(part.ids), list(part.type_ids)))
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text without truncation (special tokens included)."""
        self.tokenizer.no_truncation()
        try:
            return [len(enc.ids) for enc in self.tokenizer.encode_batch(list(texts))]
        finally:
            self.tokenizer.enable_truncation(max_length=self.max_length, stride=self.stride)

    def pad(self, windows: Sequence[Window], pad_to: int | None = None) -> dict[str, np.ndarray]:
        """Pad a batch to its longest window (or to ``pad_to``) and build int64 model inputs."""
        length = pad_to or max(len(w.input_ids) for w in windows)
        ids = np.full((len(windows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), length), dtype=np.int64)
        types = np.zeros((len(windows), length), dtype=np.int64)
        for row, window in enumerate(windows):
            n = len(window.input_ids)
            ids[row, :n] = window.input_ids
            mask[row, :n] = 1
            types[row, :n] = window.type_ids
        return dict(zip(MODEL_INPUTS, (ids, mask, types), strict=True))

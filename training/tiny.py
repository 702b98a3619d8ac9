"""A tiny, randomly initialised BERT and a WordPiece tokenizer built from given texts.

Used by the tests and by the notebooks' quick mode (``QUICK=1``) to run the real training,
export and inference code in seconds. Its predictions mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def build_tiny_backbone(target: str | Path, texts: Sequence[str], hidden_size: int = 64,
                        num_layers: int = 2, seed: int = 0) -> Path:
    """Write a 2-layer BERT (about 150k parameters) and its fast tokenizer to ``target``.

    The vocabulary is deterministic (whole words of ``texts`` plus single characters and
    their ``##`` continuations), so the same texts always give the same model.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from inference.text import normalize_text

    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: set[str] = set()
    for text in list(texts) + [normalize_text(t) for t in texts]:
        words.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    vocab = special + sorted(words) + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden_size,
                        num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=2 * hidden_size, max_position_embeddings=128)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(out))
    fast.save_pretrained(str(out))
    return out

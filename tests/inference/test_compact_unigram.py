"""The compact Unigram tokenizer gives the ``tokenizers`` library's ids, token for token, in a
fraction of its memory; files it cannot reproduce stay with the library."""

from __future__ import annotations

import json
import random
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import PY, REPO, python_env

from inference.compact_unigram import CompactUnigramTokenizer, load_tokenizer, unsupported_reason
from inference.input_prefix import apply_input_prefix, check_input_prefix
from inference.windows import WindowTokenizer

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def dataset_texts() -> list[str]:
    texts = []
    for path in sorted((REPO / "data").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                texts.append(record["text"])
    return texts


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Random strings over what breaks tokenizers: emoji with variation selectors, full-width
    forms that NFKC folds (``＜s＞`` becomes ``<s>``), special tokens, odd whitespace, many scripts."""
    rng = random.Random(seed)
    alphabet = [*"aAzZ09 \t\n  .,!?@#_-'\"()[]{}<>/\\:;…–—“”‘’ÀéñüßİıŞğ",
                *"日本語한국어عربيРусский\u200b\u00a0\u3000ａｂ１２",
        "😀", "🙏", "🇮🇩", "✌️", "☝️", "👍", "＜s＞", "<s>", "</s>", "<mask>", "<pad>", "<unk>", "wkwk", "...", "!!!"]
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]

    def any_char() -> str:
        while True:
            code = rng.randint(1, 0x2FFFF)
            if not 0xD800 <= code <= 0xDFFF:
                return chr(code)
    out += ["".join(any_char() for _ in range(rng.randint(1, 20))) for _ in range(n // 5)]
    return [*out, "", " ", "<s><s>", "a <mask> b", "x<pad>y", "  leading", "trailing  ", "\u00a0"]


def assert_same_encodings(library, compact, texts: list[str]) -> None:
    for add in (True, False):
        expected = [(e.ids, e.type_ids, e.tokens) for e in library.encode_batch(texts, add_special_tokens=add)]
        got = [(e.ids, e.type_ids, e.tokens) for e in compact.encode_batch(texts, add_special_tokens=add)]
        diff = [(t, a[0], b[0]) for t, a, b in zip(texts, expected, got, strict=True) if a != b]
        assert not diff, f"{len(diff)} of {len(texts)} texts differ (add_special_tokens={add}), first: {diff[0]}"


def assert_same_windows(path: Path, texts: list[str], max_length: int, stride: int) -> None:
    library = WindowTokenizer.from_dir(path, max_length, stride, engine="tokenizers")
    compact = WindowTokenizer.from_dir(path, max_length, stride, engine="compact")
    assert isinstance(compact.tokenizer, CompactUnigramTokenizer)
    assert compact.pad_id == library.pad_id
    assert compact.windows(texts) == library.windows(texts)
    assert compact.count_tokens(texts) == library.count_tokens(texts)


@pytest.fixture(scope="module")
def trained_unigram(tmp_path_factory) -> Path:
    """A small Unigram vocabulary really trained on the dataset, in XLM-R's layout: NFKC,
    whitespace split + Metaspace, ``<s> query: $A </s>`` (the input prefix in the template)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    trainer = trainers.UnigramTrainer(vocab_size=1500, special_tokens=SPECIALS, unk_token="<unk>",
                                      max_piece_length=12)
    tok.train_from_iterator(dataset_texts()[::3], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    apply_input_prefix(tok, "query: ")
    out = tmp_path_factory.mktemp("unigram")
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}), encoding="utf-8")
    return out


def test_a_trained_unigram_vocabulary_encodes_exactly_like_the_library(trained_unigram: Path) -> None:
    from tokenizers import Tokenizer

    library = Tokenizer.from_file(str(trained_unigram / "tokenizer.json"))
    compact = CompactUnigramTokenizer.from_file(trained_unigram / "tokenizer.json")
    texts = dataset_texts() + fuzz_texts(3000)
    # the small vocabulary leaves many characters unknown, so fused unknowns are exercised
    assert any(3 in e.ids for e in library.encode_batch(texts[-500:]))
    assert_same_encodings(library, compact, texts)
    for max_length, stride in ((128, 32), (16, 4), (12, 0)):
        assert_same_windows(trained_unigram, texts, max_length, stride)
    assert compact.token_to_id("<mask>") == library.token_to_id("<mask>")
    assert compact.id_to_token(5) == library.id_to_token(5)
    check_input_prefix(compact, {"input_prefix": "query: "}, "test")


def test_roberta_and_bert_post_processors_are_reproduced(trained_unigram: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, processors

    texts = dataset_texts()[:300] + fuzz_texts(300, seed=1)
    for name, processor in (("roberta", processors.RobertaProcessing(("</s>", 2), ("<s>", 0))),
                            ("bert", processors.BertProcessing(("</s>", 2), ("<s>", 0)))):
        tok = Tokenizer.from_file(str(trained_unigram / "tokenizer.json"))
        tok.post_processor = processor
        path = tmp_path / name / "tokenizer.json"
        path.parent.mkdir()
        tok.save(str(path))
        assert_same_encodings(tok, CompactUnigramTokenizer.from_file(path), texts)
        assert_same_windows(path.parent, texts, 24, 6)


def test_auto_keeps_small_and_unsupported_vocabularies_with_the_library(trained_unigram: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    # a supported file below the size threshold: the faster library
    assert isinstance(load_tokenizer(trained_unigram / "tokenizer.json"), Tokenizer)
    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    assert isinstance(load_tokenizer(tmp_path / "tokenizer.json"), Tokenizer)
    with pytest.raises(ValueError, match="model type 'WordPiece' is not Unigram"):
        load_tokenizer(tmp_path / "tokenizer.json", engine="compact")
    with pytest.raises(ValueError, match="engine must be"):
        load_tokenizer(tmp_path / "tokenizer.json", engine="sentencepiece")
    raw = json.loads((trained_unigram / "tokenizer.json").read_text(encoding="utf-8"))
    raw["added_tokens"][4]["lstrip"] = True
    assert "strips" in (unsupported_reason(raw) or "")


@pytest.mark.slow
def test_real_e5_tokenizer_matches_the_library_in_a_fraction_of_the_memory(tmp_path: Path) -> None:
    """The offline e5 tokenizer (250,002 pieces) with the "query: " prefix of the default recipe:
    the same windows on every dataset text and on random Unicode, and far less resident memory."""
    from tokenizers import Tokenizer

    from training.backbone import resolve_backbone

    tok = Tokenizer.from_file(str(Path(resolve_backbone("offline-me5-small").path) / "tokenizer.json"))
    apply_input_prefix(tok, "query: ")
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}), encoding="utf-8")
    assert isinstance(load_tokenizer(tmp_path / "tokenizer.json"), CompactUnigramTokenizer)
    texts = dataset_texts() + fuzz_texts(2000, seed=2)
    assert_same_encodings(tok, CompactUnigramTokenizer.from_file(tmp_path / "tokenizer.json"), texts)
    assert_same_windows(tmp_path, texts, 128, 32)

    def resident_mb(engine: str) -> float:
        code = textwrap.dedent(f"""
            from pathlib import Path
            from inference.compact_unigram import load_tokenizer
            def rss():
                line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS"))
                return int(line.split()[1]) / 1024
            before = rss()
            tok = load_tokenizer({str(tmp_path / "tokenizer.json")!r}, {engine!r})
            tok.encode("ASN dilarang foto dua jari")
            print(rss() - before)
        """)
        result = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=python_env(), cwd=REPO)
        assert result.returncode == 0, result.stderr
        return float(result.stdout.strip())

    library_mb, compact_mb = resident_mb("tokenizers"), resident_mb("compact")
    print(f"resident memory of the e5 tokenizer: library {library_mb:.0f} MB, compact {compact_mb:.0f} MB")
    assert compact_mb < 0.4 * library_mb

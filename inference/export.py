"""Export a model directory to ONNX (fp32 and dynamic int8) and check the drift.

    python -m inference.export --model-dir models/minilm --quantize int8

Writes ``DIR/onnx/model.onnx`` and, with ``--quantize int8``, ``DIR/onnx/model.int8.onnx``, plus
``DIR/onnx/export_report.json``. Steps: ``torch.onnx.export`` with dynamic batch and sequence
axes; the ONNX Runtime transformer optimizer (attention and layer-norm fusion) for BERT-family
models; for int8, the schemes of :mod:`inference.int8_schemes` in turn (dynamic int8, static int8
calibrated on training texts, weight-only 8-bit blocks, then dynamic int8 with more and more
layers in fp32) until one keeps the predictions. Before anything
is written in place, the PyTorch model and each ONNX file score the same texts (the model's validation split,
or ``--check-data``); the export is refused (exit code 1, nothing replaced) when the **label
agreement** -- the share of (text, label) decisions that are the same as PyTorch's -- falls below
``--min-agreement`` (default 99 %), or the **label-set agreement** -- the share of texts whose
whole label set is what PyTorch gives, i.e. what a reviewer sees -- falls below
``--min-label-set-agreement`` (default 97 %). The largest score difference is reported beside them.
A model with auxiliary heads (actor, text type) is exported as one graph with all heads; each
head must keep its predicted class on at least the label-set share of the texts too.

Exit codes: 0 written; 1 refused by the drift check; 2 bad input (model directory or check texts
missing or invalid).

Needs torch, onnx and onnxruntime (``pip install 'netralitas-asn-classifier[onnx]'``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.modeldir import (
    ONNX_DIR,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    WEIGHTS_FILE,
    check_model_dir,
    read_json,
    write_json,
)

#: model types whose attention the ORT transformer optimizer knows how to fuse
_ORT_OPTIMIZER_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert",
                        "albert": "bert", "electra": "bert"}
DEFAULT_MIN_AGREEMENT = 0.99
DEFAULT_MIN_LABEL_SET_AGREEMENT = 0.97
DEFAULT_OPSET = 17


class ExportRefused(RuntimeError):
    """The ONNX model disagrees with PyTorch more than allowed; nothing was written."""


def read_check_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """Texts for the drift check: a ``.jsonl`` with a ``text`` field or a ``.txt``, one per line."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"check data not found: {file}")
    texts: list[str] = []
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if file.suffix == ".jsonl":
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{file}:{lineno}: invalid JSON ({exc.msg})") from exc
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError(f"{file}:{lineno}: expected an object with a string 'text' field")
                texts.append(obj["text"])
            else:
                texts.append(line.rstrip("\n"))
            if limit and len(texts) >= limit:
                break
    if not texts:
        raise ValueError(f"{file}: no texts for the drift check")
    return texts


def default_check_data(model_dir: Path) -> Path | None:
    """The validation split the model was trained with, if it is still where it was."""
    args_file = model_dir / "training_args.json"
    if not args_file.is_file():
        return None
    data_dir = read_json(args_file).get("data", {}).get("data_dir")
    if not data_dir:
        return None
    candidate = Path(data_dir) / "validation.jsonl"
    return candidate if candidate.is_file() else None


def export_fp32(model_dir: Path, target: Path, opset: int = DEFAULT_OPSET) -> list[str]:
    """``torch.onnx.export`` (TorchScript exporter) with dynamic batch and sequence axes.

    A model with auxiliary heads is exported as one graph with the outputs ``logits`` and
    ``<task>_logits`` (``actor_logits``, ``text_type_logits``), so one pass gives every output.
    """
    import warnings

    import torch

    from inference.auxiliary_heads import WithAuxiliaryOutputs
    from inference.backends.base import MODEL_INPUTS
    from inference.mean_pooling import load_sequence_classifier

    # Eager attention traces to plain MatMul/Softmax that the ORT optimizer fuses reliably.
    model = load_sequence_classifier(str(model_dir), attn_implementation="eager").eval()
    import inspect

    params = inspect.signature(model.forward).parameters
    names = [n for n in MODEL_INPUTS if n in params]
    ids = torch.randint(5, 100, (2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    dummy = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    wrapped = WithAuxiliaryOutputs(model, names).eval()
    outputs = ["logits", *(f"{name}_logits" for name in wrapped.task_names)]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes.update({name: {0: "batch"} for name in outputs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            tuple(dummy[n] for n in names),
            str(target),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def optimize(source: Path, target: Path, config: dict[str, Any]) -> bool:
    """Run the ORT transformer optimizer; return False (and copy) when not applicable."""
    model_type = _ORT_OPTIMIZER_TYPES.get(str(config.get("model_type")))
    if model_type is None:
        shutil.copyfile(source, target)
        return False
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(source),
        model_type=model_type,
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
        opt_level=1,
    )
    optimized.save_model_to_file(str(target))
    return True


def calibration_batches(model_dir: Path, input_names: Sequence[str], limit: int = 64,
                        batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Padded input batches of training texts for static int8 calibration (``[]`` when the
    model's training split is not where it was)."""
    from inference.modeldir import read_model_info
    from inference.text import normalize_text
    from inference.windows import WindowTokenizer

    validation = default_check_data(model_dir)
    train = validation.with_name("train.jsonl") if validation is not None else None
    if train is None or not train.is_file():
        return []
    info = read_model_info(model_dir)
    tok = WindowTokenizer.from_dir(model_dir, info.max_length, info.stride)
    windows = tok.windows([normalize_text(t) for t in read_check_texts(train, limit)])
    batches = []
    for start in range(0, len(windows), batch_size):
        padded = tok.pad(windows[start:start + batch_size])
        batches.append({name: padded[name] for name in input_names})
    return batches


def _passes(result: dict[str, Any], min_agreement: float, min_label_set: float) -> bool:
    """Both violation agreements reached, and every auxiliary head keeps its predicted class on at
    least ``min_label_set`` of the texts (what a reviewer sees, as for label sets)."""
    auxiliary = [v for k, v in result.items() if k.endswith("_agreement") and k not in
                 {"label_agreement", "label_set_agreement"}]
    return (result["label_agreement"] >= min_agreement and result["label_set_agreement"] >= min_label_set
            and all(a >= min_label_set for a in auxiliary))


def drift(model_dir: Path, onnx_file: Path, texts: Sequence[str], reference: list[Any]) -> dict[str, Any]:
    """Compare an ONNX file's predictions with the PyTorch reference predictions."""
    from inference.classifier import Classifier

    clf = Classifier.from_pretrained(model_dir, backend="onnx", onnx_file=str(onnx_file.resolve()), device="cpu")
    preds = clf.predict(list(texts), batch_size=32)
    same = [p.labels == r.labels for p, r in zip(preds, reference, strict=True)]
    diffs = [abs(p.scores[k] - r.scores[k]) for p, r in zip(preds, reference, strict=True) for k in p.scores]
    decisions = [
        (p.scores[k] >= clf.thresholds[k]) == (r.scores[k] >= clf.thresholds[k])
        for p, r in zip(preds, reference, strict=True) for k in p.scores
    ]
    result = {
        "texts": len(texts),
        "label_agreement": float(np.mean(decisions)),
        "label_set_agreement": float(np.mean(same)),
        "max_abs_score_diff": float(max(diffs, default=0.0)),
        "mean_abs_score_diff": float(np.mean(diffs)) if diffs else 0.0,
        "file_mb": onnx_file.stat().st_size / 1e6,
    }
    for task in clf.auxiliary_tasks:
        pairs = [(getattr(p, task.name), getattr(r, task.name)) for p, r in zip(preds, reference, strict=True)
                 if getattr(r, task.name) is not None]
        if not pairs:
            continue
        result[f"{task.name}_agreement"] = float(np.mean([a is not None and a.label == b.label for a, b in pairs]))
        result[f"{task.name}_max_abs_score_diff"] = float(max(
            abs(a.scores[c] - b.scores[c]) for a, b in pairs if a is not None for c in b.scores))
    return result


def _try_int8_schemes(path: Path, fp32: Path, int8: Path, texts: Sequence[str], reference: list[Any],
                      input_names: Sequence[str], min_agreement: float, min_label_set: float) -> dict[str, Any]:
    """Quantise with each scheme in turn until one passes the drift gate; the report of the last
    scheme written, with every scheme's figures (or the error that stopped it) under
    ``schemes_tried``."""
    from inference.int8_schemes import int8_schemes

    tried: list[dict[str, Any]] = []
    result: dict[str, Any] | None = None
    for scheme in int8_schemes(fp32, calibration_batches(path, input_names)):
        started = time.time()
        raw = fp32.with_name("raw.onnx")
        source = raw if scheme.from_unoptimized and raw.is_file() else fp32
        try:
            scheme.quantize(source, int8)
        except Exception as exc:  # a scheme this graph or runtime cannot take: try the next
            tried.append({"scheme": scheme.name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        seconds = time.time() - started
        result = drift(path, int8, texts, reference) | {"scheme": scheme.name, "fp32_nodes": scheme.fp32_nodes,
                                                        "quantize_seconds": seconds}
        tried.append({k: v for k, v in result.items()
                      if k in {"scheme", "file_mb", "quantize_seconds"} or k.endswith("_agreement")})
        if _passes(result, min_agreement, min_label_set):
            break
    if result is None:
        raise ExportRefused("no int8 scheme could be written: " + "; ".join(f"{t['scheme']}: {t['error']}"
                                                                           for t in tried))
    return result | {"schemes_tried": tried}


def export_model(
    model_dir: str | Path,
    quantize: str | None = "int8",
    check_data: str | Path | None = None,
    check_limit: int | None = 500,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    opset: int = DEFAULT_OPSET,
    optimize_graph: bool = True,
    min_label_set_agreement: float = DEFAULT_MIN_LABEL_SET_AGREEMENT,
) -> dict[str, Any]:
    """Export, check drift, and only then move the ONNX files into ``model_dir/onnx``.

    Raises :class:`ExportRefused` when an ONNX file's label agreement with PyTorch is below
    ``min_agreement`` or its label-set agreement below ``min_label_set_agreement``; the existing
    ``onnx/`` files are then left untouched.
    """
    from inference.classifier import Classifier

    path = check_model_dir(model_dir, need=(WEIGHTS_FILE,))
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be 'int8' or None, got {quantize!r}")
    config = read_json(path / "config.json")
    data = Path(check_data) if check_data else default_check_data(path)
    if data is None:
        raise FileNotFoundError(
            f"no texts for the drift check: {path}/training_args.json does not point to an existing "
            "validation.jsonl; pass --check-data FILE (.jsonl with a 'text' field, or .txt)"
        )
    texts = read_check_texts(data, check_limit)
    started = time.time()
    reference = Classifier.from_pretrained(path, backend="torch", device="cpu").predict(texts, batch_size=32)
    report: dict[str, Any] = {"check_data": str(data), "min_agreement": min_agreement,
                              "min_label_set_agreement": min_label_set_agreement, "opset": opset}
    (path / ONNX_DIR).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path / ONNX_DIR, prefix=".export-") as tmp:
        work = Path(tmp)
        raw = work / "raw.onnx"
        report["inputs"] = export_fp32(path, raw, opset)
        fp32 = work / "model.onnx"
        if optimize_graph:
            report["optimized"] = optimize(raw, fp32, config)
        else:
            shutil.copyfile(raw, fp32)
            report["optimized"] = False
        outputs = {ONNX_FP32_FILE: fp32}
        report[ONNX_FP32_FILE] = drift(path, fp32, texts, reference)
        if quantize == "int8":
            int8 = work / "model.int8.onnx"
            report[ONNX_INT8_FILE] = _try_int8_schemes(path, fp32, int8, texts, reference, report["inputs"],
                                                       min_agreement, min_label_set_agreement)
            outputs[ONNX_INT8_FILE] = int8
        failed = {rel: r for rel, r in report.items()
                  if rel in outputs and not _passes(r, min_agreement, min_label_set_agreement)}
        if failed:
            details = ", ".join(f"{rel}: decisions {r['label_agreement']:.2%}, label sets "
                                f"{r['label_set_agreement']:.2%}" for rel, r in failed.items())
            hint = ""
            if ONNX_INT8_FILE in failed:
                schemes = "; ".join(f"{t['scheme']} {t['label_agreement']:.2%} / {t['label_set_agreement']:.2%}"
                                    if "error" not in t else f"{t['scheme']} failed"
                                    for t in report[ONNX_INT8_FILE]["schemes_tried"])
                hint = (f" int8 schemes tried (decisions / label sets): {schemes}. "
                        "Use --quantize none to export fp32 only.")
            raise ExportRefused(
                f"ONNX export refused: agreement with PyTorch below {min_agreement:.0%} of decisions or "
                f"{min_label_set_agreement:.0%} of label sets ({details}) on {len(texts)} texts from {data}; "
                f"nothing was written.{hint}"
            )
        for rel, file in outputs.items():
            file.replace(path / rel)
    report["seconds"] = time.time() - started
    write_json(path / ONNX_DIR / "export_report.json", report)
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m inference.export``."""
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--quantize", choices=["int8", "none"], default="int8",
                        help="also write the dynamic int8 model (default: int8)")
    parser.add_argument("--check-data", default=None,
                        help="texts for the drift check (.jsonl with 'text' or .txt); "
                             "default: the model's validation split")
    parser.add_argument("--check-limit", type=int, default=500, help="use at most N check texts")
    parser.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT,
                        help="refuse below this share of identical (text, label) decisions (default 0.99)")
    parser.add_argument("--min-label-set-agreement", type=float, default=DEFAULT_MIN_LABEL_SET_AGREEMENT,
                        help="refuse below this share of texts with an identical label set (default 0.97)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--no-optimize", action="store_true", help="skip the ORT transformer optimizer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference.export``."""
    args = build_parser().parse_args(argv)
    try:
        report = export_model(
            args.model_dir,
            quantize=None if args.quantize == "none" else "int8",
            check_data=args.check_data,
            check_limit=args.check_limit,
            min_agreement=args.min_agreement,
            min_label_set_agreement=args.min_label_set_agreement,
            opset=args.opset,
            optimize_graph=not args.no_optimize,
        )
    except ExportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for rel in (ONNX_FP32_FILE, ONNX_INT8_FILE):
        if rel in report:
            r = report[rel]
            scheme = f" [{r['scheme']}]" if "scheme" in r else ""
            heads = "".join(f", {k.removesuffix('_agreement')} class agreement {v:.2%}" for k, v in r.items()
                            if k.endswith("_agreement") and k not in {"label_agreement", "label_set_agreement"})
            print(f"{rel}{scheme}: {r['file_mb']:.1f} MB, label agreement {r['label_agreement']:.2%} "
                  f"(identical label sets {r['label_set_agreement']:.2%}){heads}, max |Δscore| "
                  f"{r['max_abs_score_diff']:.4f} on {r['texts']} texts")
    print(f"wrote {Path(args.model_dir) / ONNX_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

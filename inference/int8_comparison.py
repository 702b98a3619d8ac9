"""Compare every int8 scheme on one trained model: agreement with PyTorch, size and speed.

    python -m inference.int8_comparison --model-dir models/offline-me5-small --output reports/int8.json

Exports the model once (fp32, optimised), writes each scheme of :mod:`inference.int8_schemes`,
and scores the same validation texts with PyTorch fp32 and with every ONNX file: the share of
(text, label) decisions and of whole label sets equal to PyTorch's, the file size, and the time
to score the texts, reported as a speed-up over PyTorch measured in the same run (absolute
seconds on a shared machine are noise; ratios measured together are not). Nothing in the model
directory changes; ``python -m inference.export`` is what writes ``onnx/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.modeldir import WEIGHTS_FILE, check_model_dir, read_json, write_json


def _seconds(clf: Any, texts: Sequence[str], repeats: int) -> float:
    clf.predict(list(texts[:8]), batch_size=32)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        clf.predict(list(texts), batch_size=32)
        best = min(best, time.perf_counter() - started)
    return best


def compare(model_dir: str | Path, check_data: str | Path | None = None, limit: int = 364,
            timing_texts: int = 128, repeats: int = 2, num_threads: int | None = 1,
            only: Sequence[str] = ()) -> dict[str, Any]:
    """Rows of figures, one for fp32 ONNX and one per int8 scheme (see the module docstring);
    ``only`` keeps the schemes whose name contains one of its strings."""
    from inference.classifier import Classifier
    from inference.export import calibration_batches, default_check_data, drift, export_fp32, optimize, read_check_texts
    from inference.int8_schemes import int8_schemes

    path = check_model_dir(model_dir, need=(WEIGHTS_FILE,))
    data = Path(check_data) if check_data else default_check_data(path)
    if data is None:
        raise FileNotFoundError(f"no check texts for {path}; pass --check-data")
    texts = read_check_texts(data, limit)
    timed = texts[:timing_texts]
    torch_clf = Classifier.from_pretrained(path, backend="torch", device="cpu", num_threads=num_threads)
    reference = torch_clf.predict(texts, batch_size=32)
    torch_seconds = _seconds(torch_clf, timed, repeats)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="int8-comparison-") as tmp:
        work = Path(tmp)
        raw, fp32 = work / "raw.onnx", work / "model.onnx"
        names = export_fp32(path, raw)
        optimize(raw, fp32, read_json(path / "config.json"))
        files = [("fp32 (optimised)", fp32, 0.0)]
        for scheme in int8_schemes(fp32, calibration_batches(path, names)):
            if only and not any(part in scheme.name for part in only):
                continue
            target = work / f"scheme-{len(files)}.onnx"
            started = time.perf_counter()
            try:
                scheme.quantize(raw if scheme.from_unoptimized else fp32, target)
            except Exception as exc:  # a scheme this graph or runtime cannot take
                rows.append({"scheme": scheme.name, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                continue
            files.append((scheme.name, target, time.perf_counter() - started))
        for name, file, quantize_seconds in files:
            result = drift(path, file, texts, reference)
            clf = Classifier.from_pretrained(path, backend="onnx", onnx_file=str(file), device="cpu",
                                             num_threads=num_threads)
            seconds = _seconds(clf, timed, repeats)
            rows.append({"scheme": name, **{k: result[k] for k in ("label_agreement", "label_set_agreement",
                                                                    "max_abs_score_diff", "file_mb")},
                         "speedup_vs_torch_fp32": torch_seconds / seconds, "quantize_seconds": quantize_seconds})
            print(f"{name}: decisions {result['label_agreement']:.2%}, label sets {result['label_set_agreement']:.2%}, "
                  f"{result['file_mb']:.0f} MB, {torch_seconds / seconds:.2f}x PyTorch fp32", flush=True)
    return {"model_dir": str(path), "check_data": str(data), "texts": len(texts), "timing_texts": len(timed),
            "num_threads": num_threads, "torch_fp32_seconds": torch_seconds, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a markdown table."""
    lines = ["| scheme | decisions equal to PyTorch | label sets equal | max abs score diff | file MB | "
             "speed vs PyTorch fp32 |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['scheme']} | could not be built: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['scheme']} | {r['label_agreement']:.2%} | {r['label_set_agreement']:.2%} | "
                     f"{r['max_abs_score_diff']:.3f} | {r['file_mb']:.0f} | {r['speedup_vs_torch_fp32']:.2f}x |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m inference.int8_comparison``."""
    parser = argparse.ArgumentParser(prog="python -m inference.int8_comparison", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--check-data", default=None, help="texts (default: the model's validation split)")
    parser.add_argument("--limit", type=int, default=364, help="check texts for the agreements")
    parser.add_argument("--timing-texts", type=int, default=128, help="texts timed per file")
    parser.add_argument("--num-threads", type=int, default=1, help="threads for every engine (same for all)")
    parser.add_argument("--only", nargs="+", default=[], help="schemes whose name contains one of these")
    parser.add_argument("--output", default=None, help="also write the figures to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference.int8_comparison``."""
    args = build_parser().parse_args(argv)
    try:
        result = compare(args.model_dir, args.check_data, args.limit, args.timing_texts, num_threads=args.num_threads,
                         only=args.only)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(result))
    if args.output:
        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Score a CSV, JSONL, Parquet or TXT file of posts, streaming, resumable, atomic.

    python -m inference --model-dir models/minilm --input posts.csv --output scored.parquet

``--model-dir`` also takes a Hugging Face Hub repo id (``org/name``, ``--revision`` optional),
fetched into the Hub cache with only the files the backend reads (:mod:`inference.hub`).

Every input row comes out, in input order, with its columns kept and these added:
``labels`` (fired labels; ``;``-separated in CSV), ``flagged`` (any label fired), one
``score_<label>`` column per label, and ``error`` (why a row was not scored: missing, empty or
non-text value, unreadable JSON line; empty otherwise). A model trained with auxiliary heads
also adds ``actor`` and ``text_type`` (the predicted class) and ``actor_score_<class>`` /
``text_type_score_<class>`` (the probability of each class).

The input is read in chunks of ``--chunk-size`` rows; each scored chunk is saved to
``OUTPUT.parts/`` as soon as it is done, and the output file appears (by an atomic rename) only
when every chunk is done. After an interruption, ``--resume`` continues after the last
completed chunk; the result equals that of an uninterrupted run.

Exit codes: 0 done (row-level problems are reported in the ``error`` column); 1 the input or
output cannot be used (missing file, unknown format, missing text column, resume mismatch);
2 invalid command-line usage; 3 the model cannot be loaded; 130 interrupted by Ctrl-C (SIGINT)
and 143 stopped by SIGTERM (a batch scheduler ending the job); in both cases completed chunks
are kept for ``--resume``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.auxiliary import AuxiliaryTask
from inference.modeldir import atomic_write_text
from inference.tabular import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    ROW_ERROR_KEY,
    InputError,
    assemble,
    columns_of,
    count_rows,
    file_format,
    iter_chunks,
    write_chunk,
)

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a job killed by it


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the chunk being scored is dropped, finished ones are kept."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


MANIFEST = "manifest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True,
                        help="trained model directory, or a Hugging Face Hub repo id (org/name) fetched into "
                             "the Hub cache (HF_HUB_OFFLINE=1: cache only)")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit of a Hub repo id (default: main)")
    parser.add_argument("--input", required=True, help="posts.{csv,tsv,jsonl,parquet,txt}")
    parser.add_argument("--output", required=True, help="scored.{csv,jsonl,parquet}")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    parser.add_argument("--id-column", default=None,
                        help="column identifying rows; checked to exist and named in error messages")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--max-batch-tokens", type=int, default=None,
                        help="cap on windows x padded length per forward pass (default: 512 on CPU, none on GPU)")
    parser.add_argument("--chunk-size", type=int, default=2048,
                        help="rows read, scored and saved at a time (the resume granularity)")
    parser.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    parser.add_argument("--onnx-file", default=None,
                        help="ONNX file inside the model directory (default: onnx/model.int8.onnx, "
                             "else onnx/model.onnx)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threshold", type=float, default=None,
                        help="one threshold for all labels (default: the model's thresholds.json)")
    parser.add_argument("--num-threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--tokenizer-engine", choices=["auto", "compact", "tokenizers"], default="auto",
                        help="auto: the compact Unigram tokenizer for large vocabularies (e5: same ids, "
                             "about 230 MB less memory, slower); tokenizers: always the library")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its completed chunks")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _fingerprint(args: argparse.Namespace, input_path: Path, model_path: Path | None = None) -> dict[str, Any]:
    """What must not change between an interrupted run and its ``--resume``. ``model_path`` is the
    loaded directory (for a Hub repo id, the cached snapshot, whose name is the commit)."""
    stat = input_path.stat()
    model = model_path or Path(args.model_dir)
    model_stamp = hashlib.sha256()
    for name in ("config.json", "thresholds.json", "model.safetensors", "onnx/model.int8.onnx"):
        f = model / name
        if f.is_file():
            model_stamp.update(f"{name}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "model_dir": str(model.resolve()),
        "model_stamp": model_stamp.hexdigest(),
        "text_column": args.text_column,
        "chunk_size": args.chunk_size,
        "threshold": args.threshold,
        "backend": args.backend,
    }


def _prepare_parts(parts_dir: Path, fingerprint: dict[str, Any], resume: bool) -> int:
    """Return how many chunks are already complete (0 unless resuming a matching run)."""
    manifest = parts_dir / MANIFEST
    if resume and manifest.is_file():
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        changed = [k for k in fingerprint if previous.get(k) != fingerprint[k]]
        if changed:
            raise InputError(
                f"cannot resume: {', '.join(changed)} changed since the interrupted run; "
                f"delete {parts_dir} to start over"
            )
        done = 0
        while (parts_dir / f"part-{done:06d}").is_file():
            done += 1
        return done
    if parts_dir.exists():
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True)
    atomic_write_text(manifest, json.dumps(fingerprint, indent=2))
    return 0


def auxiliary_columns(tasks: Sequence[AuxiliaryTask]) -> list[str]:
    """Columns of the auxiliary outputs: ``actor`` and ``actor_score_<class>`` for each class, and
    the same for ``text_type`` (only for a model trained with those heads)."""
    return [col for t in tasks for col in (t.name, *(f"{t.name}_score_{c}" for c in t.classes))]


def output_columns(input_columns: list[str], labels: list[str],
                   auxiliary: Sequence[AuxiliaryTask] = ()) -> tuple[list[str], list[str]]:
    """Output column order and the columns the scorer adds."""
    added = ["labels", "flagged", *[f"score_{name}" for name in labels], *auxiliary_columns(auxiliary), "error"]
    return [c for c in input_columns if c not in added] + added, added


def added_types(labels: list[str], auxiliary: Sequence[AuxiliaryTask] = ()) -> dict[str, str]:
    """Fixed Arrow types of the columns the scorer adds (stable across chunks and workers)."""
    return {"labels": "list<string>", "flagged": "bool", "error": "string",
            **{f"score_{name}": "float64" for name in labels},
            **{c: ("string" if c in {t.name for t in auxiliary} else "float64") for c in auxiliary_columns(auxiliary)}}


def score_rows(rows: list[dict[str, Any]], clf: Any, text_column: str, id_column: str | None,
               batch_size: int, threshold: float | None) -> list[dict[str, Any]]:
    """Add the prediction columns to each row; rows without a usable text get ``error``."""
    texts, positions, errors = [], [], {}
    for i, row in enumerate(rows):
        value = row.get(text_column)
        problem = row.pop(ROW_ERROR_KEY, None)
        ident = f" (id {row.get(id_column)})" if id_column else ""
        if problem is None:
            if text_column not in row or value is None:
                problem = f"missing value in column '{text_column}'{ident}"
            elif not isinstance(value, str):
                problem = f"value in column '{text_column}' is a {type(value).__name__}, not text{ident}"
            elif not value.strip():
                problem = f"empty text in column '{text_column}'{ident}"
        if problem:
            errors[i] = problem
        else:
            texts.append(value)
            positions.append(i)
    preds = clf.predict(texts, batch_size=batch_size, threshold=threshold) if texts else []
    for i, pred in zip(positions, preds, strict=True):
        rows[i]["labels"] = pred.labels
        rows[i]["flagged"] = pred.flagged
        for name, score in pred.scores.items():
            rows[i][f"score_{name}"] = round(score, 6)
        for task in clf.auxiliary_tasks:
            aux = getattr(pred, task.name)
            rows[i][task.name] = aux.label
            for c, score in aux.scores.items():
                rows[i][f"{task.name}_score_{c}"] = round(score, 6)
        rows[i]["error"] = None
    for i, problem in errors.items():
        rows[i].update({"labels": None, "flagged": None, "error": problem})
        for name in clf.labels:
            rows[i][f"score_{name}"] = None
        for column in auxiliary_columns(clf.auxiliary_tasks):
            rows[i][column] = None
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the CLI with parsed arguments; returns the exit code."""
    from inference.classifier import Classifier

    input_path, output_path = Path(args.input), Path(args.output)
    try:
        if not input_path.is_file():
            raise InputError(f"input file not found: {input_path}")
        in_fmt = file_format(input_path, INPUT_FORMATS)
        out_fmt = file_format(output_path, OUTPUT_FORMATS)
        columns = columns_of(input_path, in_fmt)
        if in_fmt != "jsonl" and args.text_column not in columns:
            raise InputError(f"{input_path}: no column '{args.text_column}'; available columns: "
                             f"{', '.join(columns) or '(none)'}; choose one with --text-column")
        if in_fmt == "jsonl" and columns and args.text_column not in columns:
            raise InputError(f"{input_path}: the first record has no field '{args.text_column}'; "
                             f"available: {', '.join(columns)}; choose one with --text-column")
        if args.id_column and args.id_column not in columns:
            raise InputError(f"{input_path}: no id column '{args.id_column}'; available: {', '.join(columns)}")
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        clf = Classifier.from_pretrained(args.model_dir, backend=args.backend, device=args.device,
                                         num_threads=args.num_threads, onnx_file=args.onnx_file,
                                         max_batch_tokens=args.max_batch_tokens or "auto",
                                         revision=args.revision, tokenizer_engine=args.tokenizer_engine)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return EXIT_MODEL
    conflicts = [c for c in columns if c in output_columns([], clf.labels, clf.auxiliary_tasks)[1]]
    if conflicts:
        print(f"error: {input_path} already has the output column(s) {', '.join(conflicts)}; "
              "rename or drop them first", file=sys.stderr)
        return EXIT_INPUT
    parts_dir = output_path.with_name(output_path.name + ".parts")
    try:
        done = _prepare_parts(parts_dir, _fingerprint(args, input_path, clf.info.path if clf.info else None),
                              args.resume)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count_rows(input_path, in_fmt), unit="text", desc="scoring",
                   dynamic_ncols=True, smoothing=0.1)
    started, n_rows, n_flagged, n_errors = time.time(), 0, 0, 0
    all_columns: list[str] = []
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        for index, chunk in enumerate(iter_chunks(input_path, in_fmt, args.chunk_size)):
            for row in chunk:
                for key in row:
                    if key not in all_columns and key != ROW_ERROR_KEY:
                        all_columns.append(key)
            if index < done:
                n_rows += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                continue
            rows = score_rows(chunk, clf, args.text_column, args.id_column, args.batch_size,
                              args.threshold)
            cols, _ = output_columns(all_columns, clf.labels, clf.auxiliary_tasks)
            tmp = parts_dir / f".part-{index:06d}.tmp"
            write_chunk(rows, cols, tmp, out_fmt, types=added_types(clf.labels, clf.auxiliary_tasks))
            atomic_write_text(parts_dir / f"columns-{index:06d}.json", json.dumps(cols))
            os.replace(tmp, parts_dir / f"part-{index:06d}")
            n_rows += len(rows)
            n_flagged += sum(1 for r in rows if r.get("flagged"))
            n_errors += sum(1 for r in rows if r.get("error"))
            if bar is not None:
                bar.update(len(rows))
    except KeyboardInterrupt as exc:
        if bar is not None:
            bar.close()
        how = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted"
        print(f"\n{how}: completed chunks are kept in {parts_dir}; rerun with --resume", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
        if bar is not None:
            bar.close()
    n_parts = len(list(parts_dir.glob("part-*")))
    final_columns, _ = output_columns(all_columns, clf.labels, clf.auxiliary_tasks)
    parts = [parts_dir / f"part-{i:06d}" for i in range(n_parts)]
    if out_fmt == "csv":
        _align_csv_parts(parts, parts_dir, final_columns)
    tmp_out = output_path.with_name(f".{output_path.name}.tmp")
    assemble(parts, final_columns, tmp_out, out_fmt)
    os.replace(tmp_out, output_path)
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = time.time() - started
    scored_now = n_rows if not done else None
    rate = f", {scored_now / seconds:.1f} texts/s" if scored_now and seconds > 0 else ""
    print(f"scored {n_rows} rows ({n_flagged} flagged in this run, {n_errors} with errors) "
          f"in {seconds:.1f} s{rate} -> {output_path}", file=sys.stderr)
    return EXIT_OK


def _align_csv_parts(parts: list[Path], parts_dir: Path, final: list[str]) -> None:
    """Rewrite CSV chunks written before a late column appeared so every row has all cells."""
    import csv

    for i, part in enumerate(parts):
        cols = json.loads((parts_dir / f"columns-{i:06d}.json").read_text(encoding="utf-8"))
        if cols == final:
            continue
        with part.open(encoding="utf-8", newline="") as handle:
            rows = [dict(zip(cols, r, strict=True)) for r in csv.reader(handle)]
        tmp = part.with_suffix(".align")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([row.get(c, "") for c in final] for row in rows)
        os.replace(tmp, part)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference`` and ``asn-netral-predict``."""
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.chunk_size < 1:
        print("error: --batch-size and --chunk-size must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if args.threshold is not None and not 0 < args.threshold < 1:
        print("error: --threshold must lie strictly between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

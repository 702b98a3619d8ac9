"""Streaming readers and chunk writers for CSV, JSONL, Parquet and plain-text files.

Readers yield chunks of rows (``dict`` with the file's columns, in file order) so that a
multi-GB file is never held in memory. Writers write one chunk to one file; the CLI assembles
the chunk files at the end. Parquet needs ``pyarrow`` (``pip install 'netralitas-asn-classifier[parquet]'``).
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

INPUT_FORMATS = ("csv", "jsonl", "parquet", "txt")
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
ROW_ERROR_KEY = "_parse_error"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class InputError(ValueError):
    """The input file cannot be read as asked (format, columns)."""


def file_format(path: str | Path, allowed: Sequence[str]) -> str:
    """The format named by the file's extension (``.ndjson`` counts as jsonl)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = {"ndjson": "jsonl", "json": "jsonl", "pq": "parquet", "tsv": "csv"}.get(suffix, suffix)
    if suffix not in allowed:
        raise InputError(f"{path}: unsupported file type '.{suffix}'; use one of: "
                         + ", ".join(f".{a}" for a in allowed))
    return suffix


def _require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise InputError("Parquet files need pyarrow: pip install 'netralitas-asn-classifier[parquet]'") from exc
    return pyarrow


def count_rows(path: Path, fmt: str) -> int | None:
    """Row count when it is cheap to know (Parquet metadata), else ``None``."""
    if fmt == "parquet":
        pa = _require_pyarrow()
        return int(pa.parquet.ParquetFile(path).metadata.num_rows)
    return None


def columns_of(path: Path, fmt: str) -> list[str]:
    """The column names of the input (the keys of the first row for JSONL)."""
    if fmt == "txt":
        return ["text"]
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, dialect=_dialect(path))
            return next(reader, [])
    if fmt == "parquet":
        pa = _require_pyarrow()
        return list(pa.parquet.ParquetFile(path).schema_arrow.names)
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    return list(obj)
    return []


def _dialect(path: Path) -> type[csv.Dialect]:
    return csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel


def iter_chunks(path: Path, fmt: str, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of at most ``chunk_size`` rows.

    A JSONL line that is not a JSON object still yields a row, holding ``_line`` and
    :data:`ROW_ERROR_KEY`, so that no input row disappears.
    """
    if fmt == "parquet":
        pa = _require_pyarrow()
        for batch in pa.parquet.ParquetFile(path).iter_batches(batch_size=chunk_size):
            yield batch.to_pylist()
        return
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, dialect=_dialect(path))
            while chunk := list(itertools.islice(reader, chunk_size)):
                # DictReader puts surplus cells under the key None; keep them, named.
                yield [{("_extra" if k is None else k): v for k, v in row.items()} for row in chunk]
        return
    rows = _iter_text_rows(path) if fmt == "txt" else _iter_jsonl_rows(path)
    while chunk := list(itertools.islice(rows, chunk_size)):
        yield chunk


def _iter_text_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield {"text": line.rstrip("\r\n")}


def _iter_jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {"_line": lineno, ROW_ERROR_KEY: f"line {lineno}: invalid JSON ({exc.msg})"}
                continue
            if not isinstance(obj, dict):
                yield {"_line": lineno, ROW_ERROR_KEY: f"line {lineno}: not a JSON object"}
                continue
            yield obj


# --------------------------------------------------------------------------- writing
def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def write_chunk(rows: list[dict[str, Any]], columns: list[str], target: Path, fmt: str,
                types: dict[str, str] | None = None) -> None:
    """Write one chunk of output rows to ``target`` (a fresh file), columns in order.

    ``types`` fixes the Parquet type of some columns (``"string"``, ``"bool"``, ``"float64"``,
    ``"list<string>"``) so that chunks agree even when a chunk holds only nulls or empty lists.
    """
    if fmt == "csv":
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in rows)
    elif fmt == "jsonl":
        with target.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False,
                                        default=str) + "\n")
    else:
        pa = _require_pyarrow()
        pa.parquet.write_table(to_arrow(rows, columns, types), target)


def to_arrow(rows: list[dict[str, Any]], columns: list[str], types: dict[str, str] | None = None) -> Any:
    """Rows as a ``pyarrow.Table``; ``types`` fixes some columns' types (see :func:`write_chunk`)."""
    pa = _require_pyarrow()
    arrow_types = {"string": pa.string(), "bool": pa.bool_(), "float64": pa.float64(),
                   "list<string>": pa.list_(pa.string())}
    fixed = {name: arrow_types[t] for name, t in (types or {}).items()}
    arrays = [pa.array([row.get(c) for row in rows], type=fixed.get(c)) for c in columns]
    return pa.Table.from_arrays(arrays, names=columns)


def assemble(parts: Sequence[Path], columns: list[str], target: Path, fmt: str) -> None:
    """Concatenate chunk files into ``target`` (CSV gets one header)."""
    if fmt == "parquet":
        _assemble_parquet(parts, target)
        return
    with target.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            csv.writer(out).writerow(columns)
        for part in parts:
            with part.open(encoding="utf-8", newline="") as handle:
                while block := handle.read(1 << 20):
                    out.write(block)


def _assemble_parquet(parts: Sequence[Path], target: Path) -> None:
    pa = _require_pyarrow()
    schema = _unify_schema([pa.parquet.read_schema(p) for p in parts]) if parts else pa.schema([])
    with pa.parquet.ParquetWriter(target, schema) as writer:
        for part in parts:
            table = pa.parquet.read_table(part)
            columns = [
                table.column(f.name).cast(f.type) if f.name in table.column_names
                else pa.nulls(table.num_rows, f.type)
                for f in schema
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _unify_schema(schemas: list[Any]) -> Any:
    """Merge chunk schemas in column order of first appearance: a column that is all-null in
    one chunk takes its type from the others; conflicting types become strings."""
    pa = _require_pyarrow()
    names: list[str] = []
    for schema in schemas:
        names += [n for n in schema.names if n not in names]
    fields = []
    for name in names:
        types = {s.field(name).type for s in schemas if name in s.names} - {pa.null()}
        fields.append(pa.field(name, types.pop() if len(types) == 1 else pa.string()))
    return pa.schema(fields)

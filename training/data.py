"""Dataset schema, loading, validation (incl. near-duplicates) and iterative-stratified splits.

Command line::

    python -m training.data validate            # schema, duplicates, near-duplicates, minimums
    python -m training.data stats               # per-label / register tables (+ --plot PNG)
    python -m training.data split --seed 13     # re-split the pooled data 70/15/15

The dataset lives in ``data/dataset/{train,validation,test}.jsonl``, one object a line with
``id``, ``text``, ``labels`` (list of label names, ``[]`` = tidak_ada_indikasi), ``jenis_teks``,
``aktor_asn``, ``source`` and the optional ``register``, ``kategori_negatif``,
``jenis_pemilihan``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.auxiliary import ACTOR_CLASSES, TEXT_TYPE_CLASSES
from inference.modeldir import atomic_write_text
from inference.taxonomy import Taxonomy, load_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "dataset"
SPLITS = ("train", "validation", "test")

REQUIRED_FIELDS = ("id", "text", "labels")
SIDE_FIELDS: dict[str, tuple[str, ...]] = {
    "jenis_teks": TEXT_TYPE_CLASSES,
    "aktor_asn": ACTOR_CLASSES,
    "source": ("handwritten", "annotated", "real"),
    "register": ("medsos", "komentar", "pesan_grup", "pengaduan", "berita", "rilis_resmi", "lainnya"),
    "kategori_negatif": (
        "penjelasan_aturan", "ikrar_sosialisasi", "ajakan_memilih_netral", "kampanye_bukan_asn",
        "tindakan_diizinkan", "dugaan_tidak_terbukti", "gestur_tanpa_konteks", "program_rutin",
        "statistik_sanksi", "lainnya",
    ),
    "jenis_pemilihan": ("pilpres", "pileg", "dpd", "pilgub", "pilbup", "pilwalkot", "umum", "tidak_ada"),
}
#: side fields every example of the project's own dataset must have
STRICT_FIELDS = ("jenis_teks", "aktor_asn", "source", "register", "jenis_pemilihan")
SOCIAL_REGISTERS = ("medsos", "komentar", "pesan_grup")
REPORT_REGISTERS = ("pengaduan", "berita", "rilis_resmi")

#: Character 5-gram Jaccard similarity at or above which two texts count as near-duplicates.
#: Chosen from the measured distribution (see data/DATACARD.md): independently written texts
#: on the same topic stay below 0.35, while a text re-used with swapped names, numbers or a
#: few edited words scores 0.6 and more.
NEAR_DUPLICATE_THRESHOLD = 0.5


class DataError(ValueError):
    """A problem in a data file, with the file, line and field it concerns."""


@dataclass
class Minimums:
    """Content requirements of the project's dataset (issue "Dataset"). Users' own data can
    be validated with ``--no-minimums``."""

    total: int = 2000
    per_label: int = 100
    multi_label: int = 300
    negative_share: float = 0.40
    per_negative_kind: int = 40
    social_share: float = 0.40
    report_share: float = 0.30
    long_texts: int = 100
    long_words: int = 150


# --------------------------------------------------------------------------- reading
def parse_record(raw: Any, taxonomy: Taxonomy, where: str, strict: bool = False) -> dict[str, Any]:
    """Check one decoded JSON object against the schema and return it cleaned.

    ``where`` (e.g. ``"data/x.jsonl:12"``) prefixes every error message. ``strict`` requires
    the side fields of the project's dataset.
    """
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    for name in REQUIRED_FIELDS:
        if name not in raw:
            raise DataError(f"{where}: missing field '{name}'")
    if not isinstance(raw["id"], str | int) or isinstance(raw["id"], bool) or str(raw["id"]) == "":
        raise DataError(f"{where}: field 'id' must be a non-empty string")
    text = raw["text"]
    if not isinstance(text, str):
        raise DataError(f"{where}: field 'text' must be a string, got {type(text).__name__}")
    if not text.strip():
        raise DataError(f"{where}: field 'text' is empty or whitespace (id {raw['id']})")
    labels = raw["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DataError(f"{where}: field 'labels' must be a list of label names, got {labels!r}")
    unknown = [x for x in labels if x not in taxonomy.label2id]
    if unknown:
        hint = " (use [] for no violation)" if taxonomy.negative_label in unknown else ""
        raise DataError(
            f"{where}: unknown label(s) {unknown} in field 'labels'{hint}; "
            f"valid: {', '.join(taxonomy.names)}"
        )
    if len(set(labels)) != len(labels):
        raise DataError(f"{where}: field 'labels' repeats a label: {labels}")
    record: dict[str, Any] = {
        "id": str(raw["id"]),
        "text": text,
        "labels": sorted(labels, key=taxonomy.label2id.__getitem__),
    }
    for name, allowed in SIDE_FIELDS.items():
        value = raw.get(name)
        if value is None:
            if strict and name in STRICT_FIELDS:
                raise DataError(f"{where}: missing field '{name}'")
            continue
        if value not in allowed:
            raise DataError(f"{where}: field '{name}' has invalid value {value!r}; "
                            f"allowed: {', '.join(allowed)}")
        record[name] = value
    if strict and not labels and "kategori_negatif" not in record:
        raise DataError(f"{where}: a negative example (labels []) needs 'kategori_negatif'")
    if labels and "kategori_negatif" in record:
        raise DataError(f"{where}: 'kategori_negatif' is only for examples with labels []")
    return record


def read_jsonl(path: str | Path, taxonomy: Taxonomy, strict: bool = False) -> list[dict[str, Any]]:
    """Read and validate a dataset JSONL file.

    Raises :class:`DataError` naming the file, the line and the problem (invalid JSON, missing
    or invalid field, unknown label) and ``FileNotFoundError`` if the file does not exist.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"data file not found: {file}")
    records = []
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{file}:{lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            records.append(parse_record(raw, taxonomy, where, strict=strict))
    if not records:
        raise DataError(f"{file}: no examples")
    return records


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records as JSONL atomically (UTF-8, one object a line)."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def load_splits(
    data_dir: str | Path = DEFAULT_DATA_DIR, taxonomy: Taxonomy | None = None, strict: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Read ``train``/``validation``/``test`` JSONL files from ``data_dir``."""
    tax = taxonomy or load_taxonomy()
    return {split: read_jsonl(Path(data_dir) / f"{split}.jsonl", tax, strict) for split in SPLITS}


def multi_hot(labels: Sequence[str], taxonomy: Taxonomy) -> list[float]:
    """Multi-hot float vector in taxonomy order."""
    vec = [0.0] * len(taxonomy)
    for name in labels:
        vec[taxonomy.label2id[name]] = 1.0
    return vec


def label_matrix(records: Sequence[dict[str, Any]], taxonomy: Taxonomy) -> np.ndarray:
    """``(n, num_labels)`` 0/1 int matrix of the records' labels."""
    return np.array([multi_hot(r["labels"], taxonomy) for r in records], dtype=np.int64).reshape(
        len(records), len(taxonomy)
    )


def to_dataset_dict(
    splits: dict[str, list[dict[str, Any]]], taxonomy: Taxonomy
) -> Any:
    """Build a ``datasets.DatasetDict`` with a multi-hot float ``label`` column.

    Columns: ``id``, ``text``, ``labels`` (names), ``label`` (float vector in taxonomy order)
    and the side fields (missing values become ``None``).
    """
    from datasets import Dataset, DatasetDict

    out = {}
    for split, records in splits.items():
        columns: dict[str, list[Any]] = {"id": [], "text": [], "labels": [], "label": []}
        for name in SIDE_FIELDS:
            columns[name] = []
        for r in records:
            columns["id"].append(r["id"])
            columns["text"].append(r["text"])
            columns["labels"].append(r["labels"])
            columns["label"].append(multi_hot(r["labels"], taxonomy))
            for name in SIDE_FIELDS:
                columns[name].append(r.get(name))
        out[split] = Dataset.from_dict(columns)
    return DatasetDict(out)


def load_dataset_dict(data_dir: str | Path = DEFAULT_DATA_DIR, taxonomy: Taxonomy | None = None) -> Any:
    """Load the dataset's three splits as a ``datasets.DatasetDict`` (see :func:`to_dataset_dict`)."""
    tax = taxonomy or load_taxonomy()
    return to_dataset_dict(load_splits(data_dir, tax), tax)


# --------------------------------------------------------------------------- duplicates
_WS = re.compile(r"\s+")


def _canonical(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def char_ngram_matrix(texts: Sequence[str], n: int = 5) -> Any:
    """Binary sparse matrix of character n-grams (lower-cased, whitespace collapsed)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer="char", ngram_range=(n, n), binary=True,
                                 lowercase=False, preprocessor=_canonical, dtype=np.int32)
    return vectorizer.fit_transform(texts)


def near_duplicate_pairs(
    texts: Sequence[str], threshold: float = NEAR_DUPLICATE_THRESHOLD, block: int = 2048
) -> list[tuple[int, int, float]]:
    """All pairs ``(i, j, jaccard)`` with ``i < j`` and character 5-gram Jaccard >= threshold.

    Computed as a sparse matrix product in row blocks, so 100k texts fit in memory.
    """
    if len(texts) < 2:
        return []
    x = char_ngram_matrix(texts).tocsr()
    sizes = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    xt = x.T.tocsc()
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, x.shape[0], block):
        inter = (x[start:start + block] @ xt).tocoo()
        rows = inter.row + start
        keep = rows < inter.col
        i, j, v = rows[keep], inter.col[keep], inter.data[keep].astype(np.float64)
        jac = v / (sizes[i] + sizes[j] - v)
        hit = jac >= threshold
        pairs.extend(zip(i[hit].tolist(), j[hit].tolist(), jac[hit].tolist(), strict=True))
    return sorted(pairs)


def max_similarity_profile(texts: Sequence[str], block: int = 2048) -> np.ndarray:
    """For each text, its highest character 5-gram Jaccard to any other text."""
    x = char_ngram_matrix(texts).tocsr()
    sizes = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    best = np.zeros(len(texts))
    xt = x.T.tocsc()
    for start in range(0, x.shape[0], block):
        inter = (x[start:start + block] @ xt).toarray().astype(np.float64)
        rows = np.arange(start, start + inter.shape[0])
        jac = inter / (sizes[rows, None] + sizes[None, :] - inter)
        jac[np.arange(inter.shape[0]), rows] = 0.0
        best[rows] = jac.max(axis=1)
    return best


# --------------------------------------------------------------------------- validation
@dataclass
class ValidationReport:
    """Problems found by :func:`validate_splits` and the statistics it computed."""

    errors: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def dataset_stats(records: Sequence[dict[str, Any]], taxonomy: Taxonomy,
                  long_words: int = 150) -> dict[str, Any]:
    """Counts per label, negative kind, register, side field, length; multi-label count."""
    n = len(records)
    words = [len(r["text"].split()) for r in records]
    counter = collections.Counter(name for r in records for name in r["labels"])
    return {
        "total": n,
        "per_label": {name: counter.get(name, 0) for name in taxonomy.names},
        "negatives": sum(1 for r in records if not r["labels"]),
        "multi_label": sum(1 for r in records if len(r["labels"]) > 1),
        "negative_kinds": dict(collections.Counter(
            r.get("kategori_negatif", "?") for r in records if not r["labels"]).most_common()),
        "register": dict(collections.Counter(r.get("register", "?") for r in records).most_common()),
        "jenis_teks": dict(collections.Counter(r.get("jenis_teks", "?") for r in records).most_common()),
        "aktor_asn": dict(collections.Counter(r.get("aktor_asn", "?") for r in records).most_common()),
        "jenis_pemilihan": dict(
            collections.Counter(r.get("jenis_pemilihan", "?") for r in records).most_common()),
        "long_texts": sum(1 for w in words if w > long_words),
        "words_median": float(np.median(words)) if words else 0.0,
        "words_max": max(words, default=0),
        "words_min": min(words, default=0),
    }


def validate_splits(
    splits: dict[str, list[dict[str, Any]]],
    taxonomy: Taxonomy,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    minimums: Minimums | None = None,
) -> ValidationReport:
    """Check ids, exact and near-duplicates within and across splits, and the minimums."""
    report = ValidationReport()
    flat = [(split, r) for split, records in splits.items() for r in records]
    ids = collections.Counter(r["id"] for _, r in flat)
    report.errors += [f"duplicate id {i!r} ({c} times)" for i, c in sorted(ids.items()) if c > 1]
    seen: dict[str, str] = {}
    for split, r in flat:
        key = _canonical(r["text"])
        if key in seen:
            report.errors.append(f"exact duplicate text: {seen[key]} and {split}/{r['id']}")
        else:
            seen[key] = f"{split}/{r['id']}"
    texts = [r["text"] for _, r in flat]
    for i, j, sim in near_duplicate_pairs(texts, threshold):
        (si, ri), (sj, rj) = flat[i], flat[j]
        scope = "within" if si == sj else "across splits"
        report.errors.append(
            f"near-duplicate ({scope}, jaccard {sim:.2f} >= {threshold}): {si}/{ri['id']} ~ {sj}/{rj['id']}"
        )
    records = [r for _, r in flat]
    stats = dataset_stats(records, taxonomy)
    stats["splits"] = {split: dataset_stats(recs, taxonomy)["per_label"] | {
        "total": len(recs), "negatives": sum(1 for r in recs if not r["labels"])}
        for split, recs in splits.items()}
    report.stats = stats
    if minimums is not None:
        report.errors += _check_minimums(records, stats, taxonomy, minimums, splits)
    return report


def _check_minimums(records: Sequence[dict[str, Any]], stats: dict[str, Any], taxonomy: Taxonomy,
                    m: Minimums, splits: dict[str, list[dict[str, Any]]]) -> list[str]:
    errors = []
    n = stats["total"]
    if n < m.total:
        errors.append(f"only {n} examples; at least {m.total} required")
    for name, count in stats["per_label"].items():
        if count < m.per_label:
            errors.append(f"label {name} has {count} positives; at least {m.per_label} required")
    for split, recs in splits.items():
        present = {name for r in recs for name in r["labels"]}
        missing = [name for name in taxonomy.names if name not in present]
        if missing:
            errors.append(f"split {split} has no example of: {', '.join(missing)}")
    if stats["multi_label"] < m.multi_label:
        errors.append(f"{stats['multi_label']} multi-label examples; at least {m.multi_label} required")
    if n and stats["negatives"] / n < m.negative_share:
        errors.append(f"negatives are {stats['negatives'] / n:.1%}; at least {m.negative_share:.0%} required")
    kinds = stats["negative_kinds"]
    for kind in SIDE_FIELDS["kategori_negatif"]:
        if kind != "lainnya" and kinds.get(kind, 0) < m.per_negative_kind:
            errors.append(f"negative kind {kind} has {kinds.get(kind, 0)} examples; "
                          f"at least {m.per_negative_kind} required")
    social = sum(stats["register"].get(r, 0) for r in SOCIAL_REGISTERS)
    report_reg = sum(stats["register"].get(r, 0) for r in REPORT_REGISTERS)
    if n and social / n < m.social_share:
        errors.append(f"social-media registers are {social / n:.1%}; at least {m.social_share:.0%} required")
    if n and report_reg / n < m.report_share:
        errors.append(f"report/news registers are {report_reg / n:.1%}; at least {m.report_share:.0%} required")
    if stats["long_texts"] < m.long_texts:
        errors.append(f"{stats['long_texts']} texts longer than {m.long_words} words; "
                      f"at least {m.long_texts} required")
    return errors


# --------------------------------------------------------------------------- splitting
def stratified_split(
    records: Sequence[dict[str, Any]],
    taxonomy: Taxonomy,
    seed: int = 13,
    ratios: tuple[float, float, float] = (0.70, 0.15, 0.15),
) -> dict[str, list[dict[str, Any]]]:
    """Iterative stratification (Sechidis et al. 2011) into train/validation/test.

    Every label, and the no-label outcome, is spread over the splits in proportion. The result
    depends only on the records' ids and labels and the seed: input order does not matter.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {ratios}")
    ordered = sorted(records, key=lambda r: r["id"])
    y = label_matrix(ordered, taxonomy)
    y = np.hstack([y, (y.sum(axis=1) == 0).astype(np.int64)[:, None]])
    x = np.zeros((len(ordered), 1))
    holdout = ratios[1] + ratios[2]
    first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    train_idx, rest_idx = next(first.split(x, y))
    second = MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=ratios[2] / holdout, random_state=seed + 1)
    val_rel, test_rel = next(second.split(x[rest_idx], y[rest_idx]))
    pick = lambda idx: sorted((ordered[i] for i in idx), key=lambda r: r["id"])  # noqa: E731
    return {"train": pick(train_idx), "validation": pick(rest_idx[val_rel]),
            "test": pick(rest_idx[test_rel])}


# --------------------------------------------------------------------------- CLI
def format_label_table(stats: dict[str, Any]) -> str:
    """A plain-text table of positives per label and split."""
    splits = stats.get("splits", {})
    head = f"{'label':32} {'all':>5} " + " ".join(f"{s:>10}" for s in splits)
    lines = [head, "-" * len(head)]
    for name, count in stats["per_label"].items():
        lines.append(f"{name:32} {count:5d} " + " ".join(f"{splits[s][name]:10d}" for s in splits))
    lines.append(f"{'(negatives)':32} {stats['negatives']:5d} "
                 + " ".join(f"{splits[s]['negatives']:10d}" for s in splits))
    lines.append(f"{'(total)':32} {stats['total']:5d} "
                 + " ".join(f"{splits[s]['total']:10d}" for s in splits))
    return "\n".join(lines)


def _cmd_validate(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    try:
        splits = load_splits(args.data_dir, taxonomy, strict=not args.no_minimums)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = validate_splits(splits, taxonomy, args.threshold,
                             None if args.no_minimums else Minimums())
    s = report.stats
    print(format_label_table(s))
    print(f"\nmulti-label: {s['multi_label']}   negatives: {s['negatives']} "
          f"({s['negatives'] / s['total']:.1%})   >150 words: {s['long_texts']}")
    print(f"negative kinds: {s['negative_kinds']}")
    print(f"registers: {s['register']}")
    real_errors = _validate_real_texts(args)
    report.errors += real_errors
    if report.ok:
        print(f"\nOK: {s['total']} examples, no duplicates or near-duplicates "
              f"(char 5-gram Jaccard >= {args.threshold}).")
        return 0
    print(f"\n{len(report.errors)} problem(s):", file=sys.stderr)
    for err in report.errors:
        print(f"  - {err}", file=sys.stderr)
    return 1


def _validate_real_texts(args: argparse.Namespace) -> list[str]:
    """The real published passages (``data/real``) beside this dataset, when they exist."""
    from training.real_texts import REAL_DIR, validate_real

    real_dir = Path(args.real_dir) if args.real_dir else REAL_DIR
    if args.no_real or not real_dir.is_dir():
        return []
    try:
        errors, stats = validate_real(real_dir, Path(args.data_dir), minimums=not args.no_minimums)
    except (DataError, FileNotFoundError) as exc:
        return [f"real passages: {exc}"]
    print(f"real passages ({real_dir}): {stats['total']} from {stats['sites']} sites, "
          + ", ".join(f"{k} {v['total']}" for k, v in stats["splits"].items())
          + f"; hard negatives {stats['hard_negative_share']:.0%}")
    return [f"real passages: {e}" for e in errors]


def _cmd_stats(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    splits = load_splits(args.data_dir, taxonomy)
    stats = validate_splits(splits, taxonomy, threshold=1.01).stats
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
    else:
        print(format_label_table(stats))
    if args.plot:
        from training.plots import plot_dataset_stats

        plot_dataset_stats(stats, taxonomy, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    splits = load_splits(args.data_dir, taxonomy, strict=True)
    pooled = [r for recs in splits.values() for r in recs]
    new = stratified_split(pooled, taxonomy, seed=args.seed)
    for split, records in new.items():
        write_jsonl(Path(args.data_dir) / f"{split}.jsonl", records)
        print(f"{split}: {len(records)}")
    return 0


def read_authoring_yaml(paths: Sequence[str | Path], taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Read hand-written batches (YAML lists of examples, see data/README.md) into records."""
    import yaml

    records = []
    for path in paths:
        file = Path(path)
        try:
            items = yaml.safe_load(file.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise DataError(f"{file}: invalid YAML: {exc}") from exc
        if not isinstance(items, list):
            raise DataError(f"{file}: expected a YAML list of examples")
        for index, item in enumerate(items):
            if isinstance(item, dict):
                item = {"source": "handwritten", **item}
            where = f"{file}: item {index} ({item.get('id', '?') if isinstance(item, dict) else '?'})"
            records.append(parse_record(item, taxonomy, where, strict=True))
    return records


def _cmd_import(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    try:
        records = read_authoring_yaml(args.files, taxonomy)
        if args.merge:
            records += [r for recs in load_splits(args.data_dir, taxonomy, strict=True).values() for r in recs]
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = validate_splits({"pool": records}, taxonomy, args.threshold)
    if not report.ok:
        for err in report.errors:
            print(f"  - {err}", file=sys.stderr)
        print(f"error: {len(report.errors)} problem(s); nothing written", file=sys.stderr)
        return 1
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    for split, recs in stratified_split(records, taxonomy, seed=args.seed).items():
        write_jsonl(Path(args.data_dir) / f"{split}.jsonl", recs)
        print(f"{split}: {len(recs)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.data``."""
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--taxonomy", default=None, help="taxonomy.yaml (default: data/taxonomy.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check schema, duplicates, near-duplicates and minimums")
    v.add_argument("--threshold", type=float, default=NEAR_DUPLICATE_THRESHOLD,
                   help="near-duplicate Jaccard threshold (character 5-grams)")
    v.add_argument("--no-minimums", action="store_true",
                   help="skip the project dataset's content minimums (for your own data)")
    v.add_argument("--real-dir", default=None,
                   help="real published passages checked beside the dataset (default: data/real)")
    v.add_argument("--no-real", action="store_true", help="skip the real published passages")
    v.set_defaults(func=_cmd_validate)
    st = sub.add_parser("stats", help="print label and register statistics")
    st.add_argument("--json", action="store_true")
    st.add_argument("--plot", default=None, help="write a PNG bar chart here")
    st.set_defaults(func=_cmd_stats)
    sp = sub.add_parser("split", help="pool the three splits and re-split 70/15/15")
    sp.add_argument("--seed", type=int, default=13)
    sp.set_defaults(func=_cmd_split)
    im = sub.add_parser("import", help="add hand-written YAML batches and (re)split 70/15/15")
    im.add_argument("files", nargs="+", help="YAML lists of examples")
    im.add_argument("--merge", action="store_true", help="pool them with the existing splits")
    im.add_argument("--seed", type=int, default=13)
    im.add_argument("--threshold", type=float, default=NEAR_DUPLICATE_THRESHOLD)
    im.set_defaults(func=_cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.data``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

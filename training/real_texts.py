"""Real published passages: build, split and validate ``data/real/``.

    python -m training.real_texts build      # raw batches + adjudication -> train/validation/test.jsonl
    python -m training.real_texts validate   # schema, URLs, near-duplicates, split hygiene, minimums
    python -m training.real_texts sample --n 160   # blind double-annotation sample (text only)

``data/real/raw/*.jsonl`` holds the passages as collected: one to three paragraphs quoted from a
news or agency page, each with the dataset's labels and side fields plus ``url``, ``site``,
``published`` (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or null), ``anonymised`` and a one-line
``rationale``. ``build`` drops passages that repeat another one (character 5-gram Jaccard at or
above :data:`training.data.NEAR_DUPLICATE_THRESHOLD`, e.g. the same paragraph syndicated on two
sites), applies the adjudicated labels of the double-annotated sample, and splits by **source
group**: all passages of a site, and of any site that carries a similar passage (same event
reported twice), go to the same split. So no article, and no site, is in two splits. The real
training part may be added to training (``--extra-train-data``), the real validation part
decides recipe questions (does real training text help?), and the real test part is only
reported, never trained or tuned on.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from inference.taxonomy import Taxonomy, load_taxonomy
from training.data import (
    NEAR_DUPLICATE_THRESHOLD,
    REPO_ROOT,
    DataError,
    load_splits,
    near_duplicate_pairs,
    parse_record,
    write_jsonl,
)

REAL_DIR = REPO_ROOT / "data" / "real"
RAW_DIR = REAL_DIR / "raw"
ANNOTATION_DIR = REAL_DIR / "annotation"
REAL_SPLITS = ("train", "validation", "test")
#: Jaccard at or above which two passages from different sites count as the same story, so
#: their sites are kept in one split (below the near-duplicate threshold on purpose).
SAME_STORY_THRESHOLD = 0.3
#: share of the passages (by source group) in each real split; the validation part is for
#: choosing recipes (e.g. whether real training text helps), the test part only for reporting
DEFAULT_SHARES = {"train": 0.45, "validation": 0.15, "test": 0.4}
#: negatives that carry the trigger words without the act (the project's hard negatives)
HARD_NEGATIVE_KINDS = ("penjelasan_aturan", "ikrar_sosialisasi", "dugaan_tidak_terbukti", "kampanye_bukan_asn",
                       "ajakan_memilih_netral", "tindakan_diizinkan", "statistik_sanksi")
REAL_FIELDS = ("url", "site", "published", "anonymised", "rationale", "label_source")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
MAX_WORDS = 170


def parse_real_record(raw: Any, taxonomy: Taxonomy, where: str) -> dict[str, Any]:
    """A dataset record (strict side fields) with the real-text provenance fields checked."""
    record = parse_record(raw, taxonomy, where, strict=True)
    if raw.get("source") != "real":
        raise DataError(f"{where}: field 'source' must be 'real' for a published passage")
    url = raw.get("url")
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise DataError(f"{where}: field 'url' must be an http(s) URL, got {url!r}")
    site = raw.get("site")
    host = parsed.netloc.lower().split(":")[0].rstrip(".")
    if not isinstance(site, str) or not site or not (host == site or host.endswith("." + site)):
        raise DataError(f"{where}: field 'site' ({site!r}) must be the registrable domain of the URL host {host!r}")
    published = raw.get("published")
    if published is not None and not (isinstance(published, str) and _DATE.match(published)):
        raise DataError(f"{where}: field 'published' must be YYYY, YYYY-MM, YYYY-MM-DD or null, got {published!r}")
    if not isinstance(raw.get("anonymised"), bool):
        raise DataError(f"{where}: field 'anonymised' must be true or false")
    words = len(record["text"].split())
    if words > MAX_WORDS:
        raise DataError(f"{where}: passage has {words} words; real passages are short excerpts (at most {MAX_WORDS})")
    record.update({k: raw[k] for k in REAL_FIELDS if k in raw})
    return record


def read_real_jsonl(path: str | Path, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Read and check a JSONL file of real passages; errors name the file and line."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"real-text file not found: {file}")
    records = []
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{lineno}: invalid JSON ({exc.msg})") from exc
        records.append(parse_real_record(raw, taxonomy, f"{file}:{lineno}"))
    return records


def load_real_splits(real_dir: str | Path = REAL_DIR,
                     taxonomy: Taxonomy | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{"train": [...], "validation": [...], "test": [...]}`` from ``real_dir`` (missing files give ``[]``)."""
    taxonomy = taxonomy or load_taxonomy()
    folder = Path(real_dir)
    return {s: read_real_jsonl(folder / f"{s}.jsonl", taxonomy) if (folder / f"{s}.jsonl").is_file() else []
            for s in REAL_SPLITS}


# --------------------------------------------------------------------------- build
def deduplicate(records: list[dict[str, Any]],
                threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[list[dict[str, Any]], list[str]]:
    """Keep the first of every group of near-duplicate passages; return kept records and notes."""
    drop: dict[int, str] = {}
    for i, j, sim in near_duplicate_pairs([r["text"] for r in records], threshold):
        if i not in drop and j not in drop:
            drop[j] = f"{records[j]['id']} repeats {records[i]['id']} (jaccard {sim:.2f})"
    return [r for k, r in enumerate(records) if k not in drop], sorted(drop.values())


def source_groups(records: Sequence[dict[str, Any]], same_story: float = SAME_STORY_THRESHOLD) -> list[int]:
    """A group number per record: one site is one group, and sites that carry passages of the
    same story (Jaccard >= ``same_story``) are merged."""
    sites = sorted({r["site"] for r in records})
    parent = {s: s for s in sites}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for i, j, _ in near_duplicate_pairs([r["text"] for r in records], same_story):
        a, b = find(records[i]["site"]), find(records[j]["site"])
        if a != b:
            parent[b] = a
    roots = {root: k for k, root in enumerate(sorted({find(s) for s in sites}))}
    return [roots[find(r["site"])] for r in records]


def split_by_group(records: list[dict[str, Any]], taxonomy: Taxonomy, shares: dict[str, float] | None = None,
                   seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Assign whole source groups to the splits so that each label's positives, the negatives and
    the hard-negative kinds land in about the ``shares`` of each split (greedy, in seeded random
    order)."""
    shares = shares or DEFAULT_SHARES
    groups = source_groups(records)
    members: dict[int, list[int]] = collections.defaultdict(list)
    for k, g in enumerate(groups):
        members[g].append(k)

    def profile(idx: Sequence[int]) -> np.ndarray:
        rows = [records[k] for k in idx]
        labels = [sum(n in r["labels"] for r in rows) for n in taxonomy.names]
        negatives = [sum(not r["labels"] and r.get("kategori_negatif") == kind for r in rows)
                     for kind in HARD_NEGATIVE_KINDS]
        return np.array([*labels, *negatives, sum(not r["labels"] for r in rows), len(rows)], dtype=np.float64)

    total = profile(range(len(records)))
    weight = 1.0 / np.maximum(total, 1.0)
    # a seeded random order (not largest first), so every split gets big national sites and
    # small local ones
    order = sorted(members)
    random.Random(seed).shuffle(order)
    counts = {s: np.zeros_like(total) for s in shares}
    assigned: dict[int, str] = {}
    for g in order:
        p = profile(members[g])

        def cost(target: str, p: np.ndarray = p) -> float:
            return float(sum(np.sum(weight * (counts[s] + (p if s == target else 0) - shares[s] * total) ** 2)
                             for s in shares))

        best = min(shares, key=cost)
        counts[best] += p
        assigned[g] = best
    return {s: [r for r, g in zip(records, groups, strict=True) if assigned[g] == s] for s in shares}


def apply_adjudication(records: list[dict[str, Any]], annotation_dir: Path, taxonomy: Taxonomy) -> int:
    """Replace the labels of double-annotated passages whose annotators disagreed by the
    adjudicated ones (in place); returns how many changed."""
    file = annotation_dir / "adjudication.jsonl"
    if not file.is_file():
        return 0
    by_id = {r["id"]: r for r in records}
    changed = 0
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("final"), list):
            raise DataError(f"{file}:{lineno}: expected an object with an 'id' and a 'final' list of labels")
        record = by_id.get(entry.get("id"))
        if record is None:
            continue  # adjudicated passage later dropped as a duplicate
        unknown = [n for n in entry["final"] if n not in taxonomy.label2id]
        if unknown:
            raise DataError(f"{file}:{lineno}: unknown label(s) {unknown} in 'final'")
        final = sorted(entry["final"], key=taxonomy.label2id.__getitem__)
        if final != record["labels"]:
            changed += 1
        record["labels"] = final
        record["label_source"] = "adjudicated"
        if record["labels"]:
            record.pop("kategori_negatif", None)
        elif entry.get("kategori_negatif"):
            record["kategori_negatif"] = entry["kategori_negatif"]
        elif "kategori_negatif" not in record:
            raise DataError(f"{file}:{lineno}: {record['id']} became negative; give its 'kategori_negatif'")
    return changed


def build(raw_dir: Path = RAW_DIR, out_dir: Path = REAL_DIR, seed: int = 0) -> dict[str, Any]:
    """Read every raw batch, deduplicate, apply adjudication, split and write the two files."""
    taxonomy = load_taxonomy()
    records: list[dict[str, Any]] = []
    for file in sorted(raw_dir.glob("*.jsonl")):
        records += read_real_jsonl(file, taxonomy)
    if not records:
        raise FileNotFoundError(f"no raw passages in {raw_dir}")
    for r in records:
        r.setdefault("label_source", "annotator1")
    kept, dropped = deduplicate(records)
    changed = apply_adjudication(kept, out_dir / "annotation", taxonomy)
    hand = [r["text"] for recs in load_splits(REPO_ROOT / "data" / "dataset", taxonomy).values() for r in recs]
    clash = {i for i, j, _ in near_duplicate_pairs([r["text"] for r in kept] + hand) if i < len(kept) <= j}
    dropped += [f"{kept[i]['id']} repeats a hand-written example" for i in sorted(clash)]
    kept = [r for i, r in enumerate(kept) if i not in clash]
    splits = split_by_group(kept, taxonomy, DEFAULT_SHARES, seed)
    for name, recs in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", recs)
    return {"raw": len(records), "kept": len(kept), "dropped": dropped, "adjudicated_changes": changed,
            **{name: len(recs) for name, recs in splits.items()}}


# --------------------------------------------------------------------------- validation
def validate_real(real_dir: Path = REAL_DIR, data_dir: Path = REPO_ROOT / "data" / "dataset",
                  minimums: bool = True) -> tuple[list[str], dict[str, Any]]:
    """Problems with ``real_dir``'s train and test files, and their statistics.

    Checks each record (schema, URL, site, date), unique ids and URLs+texts, near-duplicates
    against each other and every hand-written split, that no site or URL is in both real splits,
    and (with ``minimums``) the targets of the real-text issue.
    """
    taxonomy = load_taxonomy()
    real = load_real_splits(real_dir, taxonomy)
    hand = load_splits(data_dir, taxonomy)
    errors: list[str] = []
    flat = [(f"real/{s}", r) for s, recs in real.items() for r in recs]
    flat += [(s, r) for s, recs in hand.items() for r in recs]
    ids = collections.Counter(r["id"] for _, r in flat)
    errors += [f"duplicate id {i!r}" for i, c in sorted(ids.items()) if c > 1]
    n_real = sum(len(v) for v in real.values())
    for i, j, sim in near_duplicate_pairs([r["text"] for _, r in flat]):
        if i < n_real:
            errors.append(f"near-duplicate (jaccard {sim:.2f}): {flat[i][0]}/{flat[i][1]['id']} ~ "
                          f"{flat[j][0]}/{flat[j][1]['id']}")
    for key in ("site", "url"):
        for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
            both = {r[key] for r in real[a]} & {r[key] for r in real[b]}
            errors += [f"{key} {v!r} is in both real {a} and real {b}" for v in sorted(both)]
    records = [r for recs in real.values() for r in recs]
    stats = real_stats(records, taxonomy)
    stats["splits"] = {s: real_stats(recs, taxonomy) for s, recs in real.items()}
    if minimums and records:
        if stats["total"] < 400:
            errors.append(f"only {stats['total']} real passages (at least 400)")
        if stats["sites"] < 40:
            errors.append(f"only {stats['sites']} distinct sites (at least 40)")
        if stats["hard_negative_share"] < 0.4:
            errors.append(f"hard negatives are {stats['hard_negative_share']:.0%} (at least 40%)")
    return errors, stats


def real_stats(records: Sequence[dict[str, Any]], taxonomy: Taxonomy) -> dict[str, Any]:
    """Counts that the data card and the minimums use."""
    n = len(records)
    hard = sum(1 for r in records if not r["labels"] and r.get("kategori_negatif") in HARD_NEGATIVE_KINDS)
    years = collections.Counter((r.get("published") or "unknown")[:4] for r in records)
    return {
        "total": n,
        "sites": len({r["site"] for r in records}),
        "articles": len({r["url"] for r in records}),
        "per_label": {name: sum(name in r["labels"] for r in records) for name in taxonomy.names},
        "negatives": sum(1 for r in records if not r["labels"]),
        "hard_negatives": hard,
        "hard_negative_share": hard / n if n else 0.0,
        "negative_kinds": dict(collections.Counter(
            r.get("kategori_negatif") for r in records if not r["labels"]).most_common()),
        "anonymised": sum(1 for r in records if r.get("anonymised")),
        "years": dict(sorted(years.items())),
        "top_sites": collections.Counter(r["site"] for r in records).most_common(10),
    }


# --------------------------------------------------------------------------- double annotation
def write_sample(n: int, out_dir: Path = ANNOTATION_DIR, real_dir: Path = REAL_DIR, seed: int = 0) -> int:
    """A blind sample for the second annotator: ``double_annotation_sample.jsonl`` (item, text
    only) and ``double_annotation_key.json`` (item -> passage id), stratified so rare labels and
    hard negatives are in it."""
    taxonomy = load_taxonomy()
    real = load_real_splits(real_dir, taxonomy)
    records = [r for recs in real.values() for r in recs]
    rng = random.Random(seed)
    rng.shuffle(records)
    chosen: list[dict[str, Any]] = []
    for name in sorted(taxonomy.names, key=lambda x: sum(x in r["labels"] for r in records)):
        chosen += [r for r in records if name in r["labels"] and r not in chosen][:6]
    for r in records:
        if len(chosen) >= n:
            break
        if r not in chosen:
            chosen.append(r)
    rng.shuffle(chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [{"item": f"rda-{k:03d}", "text": r["text"]} for k, r in enumerate(chosen[:n], start=1)]
    write_jsonl(out_dir / "double_annotation_sample.jsonl", items)
    key = {it["item"]: r["id"] for it, r in zip(items, chosen, strict=False)}
    (out_dir / "double_annotation_key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    return len(items)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.real_texts``."""
    parser = argparse.ArgumentParser(prog="python -m training.real_texts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="deduplicate, adjudicate and split the raw batches")
    b.add_argument("--raw-dir", default=str(RAW_DIR))
    b.add_argument("--out-dir", default=str(REAL_DIR))
    b.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("validate", help="check data/real/train.jsonl and test.jsonl")
    v.add_argument("--real-dir", default=str(REAL_DIR))
    v.add_argument("--data-dir", default=str(REPO_ROOT / "data" / "dataset"))
    v.add_argument("--no-minimums", action="store_true")
    s = sub.add_parser("sample", help="write the blind double-annotation sample")
    s.add_argument("--n", type=int, default=160)
    s.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.real_texts``."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            result = build(Path(args.raw_dir), Path(args.out_dir), args.seed)
            print(f"{result['raw']} raw passages, {result['kept']} kept ({len(result['dropped'])} dropped), "
                  f"{result['adjudicated_changes']} label sets changed by adjudication; "
                  + ", ".join(f"{s} {result[s]}" for s in REAL_SPLITS))
            for note in result["dropped"]:
                print(f"  dropped: {note}")
            return 0
        if args.command == "sample":
            print(f"wrote {write_sample(args.n, seed=args.seed)} items to {ANNOTATION_DIR}")
            return 0
        errors, stats = validate_real(Path(args.real_dir), Path(args.data_dir), not args.no_minimums)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in stats.items() if k != "splits"}, ensure_ascii=False))
    for name, s in stats["splits"].items():
        print(f"{name}: {s['total']} passages, {s['sites']} sites, {s['negatives']} negatives, "
              f"positives per label {s['per_label']}")
    if errors:
        print(f"{len(errors)} problem(s):", file=sys.stderr)
        for err in errors:
            print(f"  - {err}", file=sys.stderr)
        return 1
    print("OK: real passages are valid, split by source, and free of near-duplicates")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Merge a labelled Label Studio export into the dataset, with provenance and a new version.

    python -m training.merge --export export.json --batch round-1 --annotator "Tim Bawaslu Kab. X"

One command, in this order:

1. **Convert** the export with :func:`training.labelstudio.from_export` (unannotated and
   cancelled tasks are skipped and listed; an unknown label or a missing side field names the
   task). Nothing is written when any task is invalid.
2. **Sort** each example: a task whose ``id`` and text are those of a dataset example is a
   *correction* of it (a re-reviewed audit task; needs ``--update-existing``); any other is
   *new* and gets the id ``<batch>-<id>`` (``--id-prefix``).
3. **Reject** new texts that are exact or near-duplicates (character 5-gram Jaccard >= 0.5) of a
   dataset text or of an earlier text of the same batch; they are listed, not merged.
4. **Place** the new examples in ``--splits`` (default ``train,validation``: the test split is
   untouched unless named; ratios 70:15:15 restricted to the named splits, stratified by label).
   Corrections stay in their split; correcting a test example also needs ``test`` in ``--splits``.
5. **Validate** the result with ``training.data``'s checks (schema, duplicates, minimums unless
   ``--no-minimums``) and write the split files, then bump the dataset version in
   ``manifest.json`` (new examples: minor; corrections only: patch) with the batch's provenance:
   name, annotators, date, source, export file and hash, ids added per split, rejected texts,
   corrections (old and new labels), and each example's annotator and annotation time.

``--dry-run`` does everything but write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.taxonomy import Taxonomy, load_taxonomy
from training.data import (
    DEFAULT_DATA_DIR,
    NEAR_DUPLICATE_THRESHOLD,
    SIDE_FIELDS,
    SPLITS,
    DataError,
    Minimums,
    load_splits,
    near_duplicate_pairs,
    parse_record,
    validate_splits,
    write_jsonl,
)
from training.dataset_version import describe_version, record_change, start_manifest, today
from training.labelstudio import _latest_annotation, from_export

#: share of each split when all three receive new examples (the dataset's own 70/15/15)
SPLIT_RATIOS = {"train": 0.70, "validation": 0.15, "test": 0.15}


def _canonical(text: str) -> str:
    return " ".join(text.lower().split())


def annotation_provenance(task: dict[str, Any]) -> dict[str, Any]:
    """Who annotated a task and when, from its most recent non-cancelled annotation."""
    annotation = _latest_annotation(task) or {}
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return {"annotator": None if who is None else (who if isinstance(who, str) else f"label-studio-user-{who}"),
            "annotated_at": annotation.get("updated_at") or annotation.get("created_at")}


def assign_splits(records: Sequence[dict[str, Any]], taxonomy: Taxonomy, splits: Sequence[str],
                  seed: int = 13) -> dict[str, list[dict[str, Any]]]:
    """Distribute new examples over ``splits`` in proportion to :data:`SPLIT_RATIOS`, keeping
    each label's (and the no-label outcome's) share close to the ratios: examples are placed
    rarest label first, each into the split that most lacks that label, then the split that
    most lacks examples (a greedy form of iterative stratification). Deterministic for a seed."""
    names = list(splits)
    weights = np.array([SPLIT_RATIOS[s] for s in names], dtype=np.float64)
    weights /= weights.sum()
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in names}
    if not records:
        return out
    columns = [*taxonomy.names, taxonomy.negative_label]

    def cols(r: dict[str, Any]) -> list[str]:
        return list(r["labels"]) or [taxonomy.negative_label]

    totals = {c: sum(1 for r in records if c in cols(r)) for c in columns}

    def tiebreak(r: dict[str, Any]) -> str:
        return hashlib.sha256(f"{seed}:{r['id']}".encode()).hexdigest()

    order = sorted(records, key=lambda r: (min(totals[c] for c in cols(r)), tiebreak(r)))
    have = {s: dict.fromkeys(columns, 0) for s in names}
    size = dict.fromkeys(names, 0)
    for placed, r in enumerate(order):
        rarest = min(cols(r), key=lambda c: (totals[c], columns.index(c)))
        need = [weights[k] * totals[rarest] - have[s][rarest] for k, s in enumerate(names)]
        room = [weights[k] * (placed + 1) - size[s] for k, s in enumerate(names)]
        k = max(range(len(names)), key=lambda i: (round(need[i], 9), round(room[i], 9), -i))
        chosen = names[k]
        out[chosen].append(r)
        size[chosen] += 1
        for c in cols(r):
            have[chosen][c] += 1
    return out


def plan_merge(export: Any, splits: dict[str, list[dict[str, Any]]], taxonomy: Taxonomy, *, batch: str,
               where: str = "<export>", id_prefix: str | None = None,
               target_splits: Sequence[str] = ("train", "validation"), update_existing: bool = False,
               strict: bool = True, threshold: float = NEAR_DUPLICATE_THRESHOLD,
               seed: int = 13) -> dict[str, Any]:
    """Work out a merge without writing anything.

    Returns ``{"splits": new split lists, "added": {split: [ids]}, "rejected": [...],
    "corrected": [...], "unchanged": [ids], "skipped": [...], "examples": {id: provenance}}``.
    Raises :class:`DataError` for an invalid export or a disallowed change.
    """
    records, skipped = from_export(export, taxonomy, where)
    tasks = [t for t in export if isinstance(t, dict) and _latest_annotation(t) is not None]
    provenance = [annotation_provenance(t) for t in tasks]
    errors = []
    if strict:
        for task, record in zip(tasks, records, strict=True):
            try:
                parse_record(record, taxonomy, f"{where}: task {task.get('id', record['id'])}", strict=True)
            except DataError as exc:
                errors.append(str(exc))
    if errors:
        raise DataError("; ".join(errors))
    location = {r["id"]: (split, i) for split, recs in splits.items() for i, r in enumerate(recs)}
    new_splits = {split: [dict(r) for r in recs] for split, recs in splits.items()}
    prefix = f"{batch}-" if id_prefix is None else id_prefix
    corrected: list[dict[str, Any]] = []
    unchanged: list[str] = []
    new_records: list[tuple[dict[str, Any], dict[str, Any]]] = []
    examples: dict[str, dict[str, Any]] = {}
    for record, prov in zip(records, provenance, strict=True):
        hit = location.get(record["id"])
        if hit is not None and _canonical(splits[hit[0]][hit[1]]["text"]) == _canonical(record["text"]):
            split, i = hit
            if not update_existing:
                raise DataError(f"{where}: {record['id']} is already in the {split} split; pass --update-existing "
                                "to apply a re-reviewed label set")
            old = splits[split][i]
            updated = {**old, "labels": record["labels"]}
            updated.update({name: record[name] for name in SIDE_FIELDS if name != "source" and name in record})
            if updated["labels"]:
                updated.pop("kategori_negatif", None)
            if updated == old:
                unchanged.append(record["id"])
                continue
            if split not in target_splits:
                raise DataError(f"{where}: {record['id']} is in the {split} split, which this merge may not change; "
                                f"add it to --splits to correct it")
            new_splits[split][i] = updated
            changed = sorted(k for k in set(old) | set(updated) if old.get(k) != updated.get(k))
            corrected.append({"id": record["id"], "split": split, "old_labels": old["labels"],
                              "new_labels": updated["labels"], "changed_fields": changed})
            examples[record["id"]] = prov
            continue
        record = {**record, "id": f"{prefix}{record['id']}"}
        if record["id"] in location or any(record["id"] == r["id"] for r, _ in new_records):
            raise DataError(f"{where}: id {record['id']!r} already exists; choose another --id-prefix")
        new_records.append((record, prov))
    existing = [r for recs in new_splits.values() for r in recs]
    texts = [r["text"] for r, _ in new_records] + [r["text"] for r in existing]
    n_new = len(new_records)
    reason: dict[int, str] = {}
    seen = {_canonical(r["text"]): r["id"] for r in existing}
    for k, (r, _) in enumerate(new_records):
        key = _canonical(r["text"])
        if key in seen:
            reason[k] = f"exact duplicate of {seen[key]}"
        else:
            seen[key] = r["id"]
    for i, j, sim in near_duplicate_pairs(texts, threshold):
        if i >= n_new or i in reason or j in reason:
            continue  # pairs among existing texts, or already rejected
        if j >= n_new:
            reason[i] = f"near-duplicate (Jaccard {sim:.2f}) of {existing[j - n_new]['id']}"
        else:
            reason[j] = f"near-duplicate (Jaccard {sim:.2f}) of {new_records[i][0]['id']} in this batch"
    rejected = [{"id": new_records[k][0]["id"], "reason": why} for k, why in sorted(reason.items())]
    accepted = [(r, p) for k, (r, p) in enumerate(new_records) if k not in reason]
    placed = assign_splits([r for r, _ in accepted], taxonomy, list(target_splits), seed)
    added: dict[str, list[str]] = {}
    for split, recs in placed.items():
        new_splits.setdefault(split, []).extend(recs)
        if recs:
            added[split] = [r["id"] for r in recs]
    examples.update({r["id"]: p for r, p in accepted})
    return {"splits": new_splits, "added": added, "rejected": rejected, "corrected": corrected,
            "unchanged": unchanged, "skipped": skipped, "examples": examples}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.merge``."""
    parser = argparse.ArgumentParser(prog="python -m training.merge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="Label Studio JSON export (Export -> JSON)")
    parser.add_argument("--batch", required=True, help="batch name recorded with every example, e.g. round-1")
    parser.add_argument("--annotator", default=None,
                        help="who labelled the batch (default: the export's completed_by of each annotation)")
    parser.add_argument("--date", default=None, help="date of the batch, YYYY-MM-DD (default: today)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--taxonomy", default=None)
    parser.add_argument("--splits", default="train,validation",
                        help="comma-separated splits that receive new examples and may be corrected "
                             "(default: train,validation; name test to change the test split)")
    parser.add_argument("--id-prefix", default=None, help="prefix of new examples' ids (default: '<batch>-')")
    parser.add_argument("--update-existing", action="store_true",
                        help="apply re-reviewed label sets of examples already in the dataset (audit tasks)")
    parser.add_argument("--no-minimums", action="store_true",
                        help="your own data: side fields optional and no content minimums")
    parser.add_argument("--threshold", type=float, default=NEAR_DUPLICATE_THRESHOLD,
                        help="near-duplicate Jaccard threshold (character 5-grams)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.merge``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    target = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in target if s not in SPLITS]
    if not target or unknown:
        parser.error(f"--splits takes names from {', '.join(SPLITS)}; got {args.splits!r}")
    taxonomy = load_taxonomy(args.taxonomy)
    path = Path(args.export)
    try:
        if not path.is_file():
            raise FileNotFoundError(f"export file not found: {path}")
        raw = path.read_bytes()
        try:
            export = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: invalid JSON ({exc})") from exc
        splits = load_splits(args.data_dir, taxonomy, strict=not args.no_minimums)
        plan = plan_merge(export, splits, taxonomy, batch=args.batch, where=str(path), id_prefix=args.id_prefix,
                          target_splits=target, update_existing=args.update_existing, strict=not args.no_minimums,
                          threshold=args.threshold, seed=args.seed)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for msg in plan["skipped"]:
        print(f"skipped {msg}", file=sys.stderr)
    for item in plan["rejected"]:
        print(f"rejected {item['id']}: {item['reason']}", file=sys.stderr)
    for item in plan["corrected"]:
        print(f"corrected {item['split']}/{item['id']}: {item['old_labels']} -> {item['new_labels']}", file=sys.stderr)
    report = validate_splits(plan["splits"], taxonomy, args.threshold, None if args.no_minimums else Minimums())
    if not report.ok:
        for err in report.errors:
            print(f"  - {err}", file=sys.stderr)
        print(f"error: the merged dataset fails validation ({len(report.errors)} problem(s)); nothing written",
              file=sys.stderr)
        return 1
    n_added = sum(len(v) for v in plan["added"].values())
    summary = (f"{n_added} new ({', '.join(f'{s} {len(v)}' for s, v in plan['added'].items()) or 'none'}), "
               f"{len(plan['corrected'])} corrected, {len(plan['unchanged'])} unchanged, "
               f"{len(plan['rejected'])} rejected, {len(plan['skipped'])} tasks skipped")
    if args.dry_run:
        print(f"dry run: {summary}; nothing written")
        return 0
    if not n_added and not plan["corrected"]:
        print(f"nothing to merge: {summary}; dataset version stays {describe_version(args.data_dir)}")
        return 0
    date = args.date or today()
    manifest = start_manifest(args.data_dir, "dataset before its first recorded merge", date)
    changed = set(plan["added"]) | {c["split"] for c in plan["corrected"]}
    for split in SPLITS:
        if split in changed:
            write_jsonl(Path(args.data_dir) / f"{split}.jsonl", plan["splits"][split])
    examples = plan["examples"]
    if args.annotator:
        for prov in examples.values():
            prov["annotator"] = args.annotator
    annotators = sorted({p["annotator"] or "unknown" for p in examples.values()})
    sources = sorted({r.get("source", "?") for recs in plan["splits"].values() for r in recs
                      if r["id"] in {i for ids in plan["added"].values() for i in ids}})
    entry = {
        "date": date,
        "change": "merge" if n_added else "corrections",
        "batch": args.batch,
        "annotators": annotators,
        "source": sources,
        "export": path.name,
        "export_sha256": hashlib.sha256(raw).hexdigest(),
        "added": plan["added"],
        "rejected": plan["rejected"],
        "corrected": plan["corrected"],
        "examples": examples,
    }
    version = record_change(args.data_dir, manifest, "minor" if n_added else "patch", entry)
    print(f"merged batch {args.batch!r}: {summary}; dataset version {version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Choose the unlabelled posts to label next and write them as pre-annotated Label Studio tasks.

    python -m training.select --model-dir models/mine --pool posts.csv --n 200 --strategy diverse --output tasks.json

The pool is read like the scoring CLI reads its input (``.csv``/``.tsv``, ``.jsonl``,
``.parquet``, ``.txt``; ``--text-column``, ``--id-column``). Rows without a usable text, repeats
of a text earlier in the pool, texts already in the dataset (``--data-dir``) or near-duplicates
of one (character 5-gram Jaccard >= 0.5, the dataset's own rule), and texts of earlier task
files (``--exclude``) are never selected. Strategies:

* ``random``: a uniform sample (seeded), the yardstick every other strategy must beat.
* ``uncertainty``: for each label, how close its calibrated score is to the label's threshold,
  ``1 - |score - threshold| / max(threshold, 1 - threshold)`` (1 = on the threshold, 0 = as far
  as it can be); a text's uncertainty is that of its least certain label, and the most
  uncertain texts are taken.
* ``diverse``: uncertainty with diversity. Labels take turns, the label predicted least often in
  the pool first, each taking its most uncertain remaining text (while that label's uncertainty
  is at least ``--min-uncertainty``; then the batch is filled by overall uncertainty), so rare
  labels are represented; a text that is a near-duplicate of an earlier pick is skipped.

Each task carries the text, the pool id, the selection rank and score (sortable in Label
Studio's data manager), and one prediction: the labels the model fires (``model_version`` =
model name and a short hash of its weights; ``score`` = the model's confidence, ``1 -
uncertainty``, so sorting by prediction score ascending lists the least certain first). The
file imports unchanged into a project using ``data/label_studio.xml``.

Exit codes: 0 done; 1 input problem (missing file or column, empty pool, fewer selectable texts
than ``--n``); 2 usage error; 3 the model cannot be loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.tabular import INPUT_FORMATS, ROW_ERROR_KEY, InputError, columns_of, file_format, iter_chunks
from training.data import DEFAULT_DATA_DIR, NEAR_DUPLICATE_THRESHOLD, SPLITS, char_ngram_matrix

STRATEGIES = ("random", "uncertainty", "diverse")
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
#: in ``diverse``, a label stops taking turns when its best remaining text is less uncertain
DEFAULT_MIN_UNCERTAINTY = 0.5


class SelectionError(ValueError):
    """The pool or the request cannot be used (file, column, size)."""


@dataclass
class Pool:
    """The usable texts of a pool file, in file order, and what was dropped."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, keep: Sequence[int]) -> Pool:
        """A pool of the rows at positions ``keep``."""
        return Pool([self.ids[i] for i in keep], [self.texts[i] for i in keep],
                    [self.extras[i] for i in keep], self.rows, dict(self.skipped))


def _canonical(text: str) -> str:
    return " ".join(text.lower().split())


# --------------------------------------------------------------------------- reading
def read_pool(path: str | Path, text_column: str = "text", id_column: str | None = None) -> Pool:
    """Read a CSV/TSV, JSONL, Parquet or TXT pool with the scoring CLI's readers.

    Rows with a missing, non-text or empty value and exact repeats (case and spacing ignored)
    of an earlier row are skipped and counted. Without ``id_column`` a row's id is
    ``row-<n>`` (its 1-based position among the file's rows).
    """
    file = Path(path)
    if not file.is_file():
        raise SelectionError(f"pool file not found: {file}")
    try:
        fmt = file_format(file, INPUT_FORMATS)
        columns = columns_of(file, fmt)
    except InputError as exc:
        raise SelectionError(str(exc)) from exc
    if fmt != "txt" and columns and text_column not in columns:
        raise SelectionError(f"{file}: no column '{text_column}'; available columns: {', '.join(columns)}; "
                             "choose one with --text-column")
    if id_column and columns and id_column not in columns:
        raise SelectionError(f"{file}: no id column '{id_column}'; available columns: {', '.join(columns)}")
    pool = Pool()
    seen_text: set[str] = set()
    seen_id: dict[str, int] = {}
    for chunk in iter_chunks(file, fmt, 4096):
        for row in chunk:
            pool.rows += 1
            value = row.get(text_column)
            if row.get(ROW_ERROR_KEY):
                reason = "unreadable row"
            elif not isinstance(value, str) or not value.strip():
                reason = "missing or empty text"
            elif _canonical(value) in seen_text:
                reason = "repeat of an earlier pool text"
            else:
                reason = ""
            if reason:
                pool.skipped[reason] = pool.skipped.get(reason, 0) + 1
                continue
            assert isinstance(value, str)
            ident = str(row.get(id_column)) if id_column else f"row-{pool.rows}"
            if id_column and (row.get(id_column) is None or ident == ""):
                raise SelectionError(f"{file}: row {pool.rows} has no value in id column '{id_column}'")
            if ident in seen_id:
                raise SelectionError(f"{file}: id {ident!r} repeats (rows {seen_id[ident]} and {pool.rows}); "
                                     "ids must be unique")
            seen_id[ident] = pool.rows
            seen_text.add(_canonical(value))
            pool.ids.append(ident)
            pool.texts.append(value)
            pool.extras.append({k: v for k, v in row.items() if k not in {text_column, id_column}})
    if pool.rows == 0:
        raise SelectionError(f"{file}: the pool is empty (no rows)")
    if not pool.texts:
        raise SelectionError(f"{file}: no usable text in {pool.rows} rows ({_skipped_text(pool.skipped)})")
    return pool


def _skipped_text(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "none skipped"


def reference_texts(data_dir: str | Path | None, exclude: Sequence[str | Path] = ()) -> list[str]:
    """Texts that must not be selected: every split of the dataset and earlier task files."""
    texts: list[str] = []
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise SelectionError(f"dataset directory not found: {directory}")
        for split in SPLITS:
            file = directory / f"{split}.jsonl"
            if file.is_file():
                with file.open(encoding="utf-8") as handle:
                    texts += [json.loads(line)["text"] for line in handle if line.strip()]
    for path in exclude:
        file = Path(path)
        if not file.is_file():
            raise SelectionError(f"--exclude file not found: {file}")
        try:
            tasks = json.loads(file.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise SelectionError(f"{file}: invalid JSON ({exc.msg})") from exc
        if not isinstance(tasks, list):
            raise SelectionError(f"{file}: expected a list of Label Studio tasks")
        texts += [t["data"]["text"] for t in tasks if isinstance(t, dict) and isinstance(t.get("data"), dict)
                  and isinstance(t["data"].get("text"), str)]
    return texts


def max_jaccard(ngrams: Any, reference: Any, block: int = 2048) -> np.ndarray:
    """For each row of ``ngrams`` (binary sparse n-gram matrix), its highest Jaccard similarity
    to any row of ``reference`` (same columns); 0 when ``reference`` has no rows."""
    x = ngrams.tocsr()
    r = reference.tocsr()
    best = np.zeros(x.shape[0])
    if r.shape[0] == 0 or x.shape[0] == 0:
        return best
    size_x = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    size_r = np.asarray(r.sum(axis=1)).ravel().astype(np.float64)
    rt = r.T.tocsc()
    for start in range(0, x.shape[0], block):
        inter = (x[start:start + block] @ rt).tocoo()
        rows = inter.row + start
        v = inter.data.astype(np.float64)
        jac = v / (size_x[rows] + size_r[inter.col] - v)
        np.maximum.at(best, rows, jac)
    return best


def _ngrams(texts: Sequence[str]) -> Any:
    """Character 5-gram matrix (CSR); one empty column when no text has five characters."""
    from scipy.sparse import csr_matrix

    try:
        return char_ngram_matrix(texts).tocsr()
    except ValueError:  # empty vocabulary
        return csr_matrix((len(texts), 1), dtype=np.int32)


def drop_known(pool: Pool, reference: Sequence[str],
               threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[Pool, Any]:
    """Remove pool texts equal to, or near-duplicates of, a reference text. Returns the kept
    pool and the character 5-gram matrix of its texts (for the diversity check)."""
    matrix = _ngrams([*pool.texts, *reference])
    own = matrix[:len(pool)]
    known = {_canonical(t) for t in reference}
    exact = np.array([_canonical(t) in known for t in pool.texts], dtype=bool)
    similar = max_jaccard(own, matrix[len(pool):]) >= threshold
    keep = np.flatnonzero(~exact & ~similar)
    kept = pool.take(keep.tolist())
    if exact.any():
        kept.skipped["already in the dataset or an earlier task file"] = int(exact.sum())
    if (similar & ~exact).any():
        reason = f"near-duplicate (Jaccard >= {threshold}) of a dataset or task text"
        kept.skipped[reason] = int((similar & ~exact).sum())
    return kept, own[keep]


# --------------------------------------------------------------------------- strategies
def label_uncertainty(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(n, labels)`` uncertainty of each decision: 1 on the threshold, 0 at the far end
    (score 0 or 1), ``1 - |p - t| / max(t, 1 - t)``."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)[None, :]
    return np.clip(1.0 - np.abs(p - t) / np.maximum(t, 1.0 - t), 0.0, 1.0)


def text_uncertainty(probs: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each text's uncertainty (that of its least certain label) and that label's index."""
    u = label_uncertainty(probs, thresholds)
    return u.max(axis=1), u.argmax(axis=1)


def select_random(n_pool: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` indices drawn uniformly, and the draws they were ranked by (highest first)."""
    draws = np.random.default_rng(seed).random(n_pool)
    order = np.argsort(-draws, kind="stable")[:n]
    return order, draws[order]


def select_uncertainty(probs: np.ndarray, thresholds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` most uncertain texts (ties: pool order), and their uncertainty."""
    score, _ = text_uncertainty(probs, thresholds)
    order = np.lexsort((np.arange(len(score)), -score))[:n]
    return order, score[order]


def select_diverse(probs: np.ndarray, thresholds: np.ndarray, n: int, ngrams: Any = None,
                   similarity: float = NEAR_DUPLICATE_THRESHOLD,
                   min_uncertainty: float = DEFAULT_MIN_UNCERTAINTY) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Uncertainty sampling with label turns and no near-duplicate picks.

    Labels take turns, least often predicted in the pool first; each turn takes the remaining
    text most uncertain about that label, while that uncertainty is >= ``min_uncertainty``.
    Then the batch is filled in order of overall uncertainty. A candidate whose character
    5-gram Jaccard to an earlier pick is >= ``similarity`` (``ngrams``: binary sparse matrix,
    one row per text) is skipped for good. Returns the picks in order, their uncertainty, and
    ``{"skipped_near_duplicates", "picked_by_label"}``.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    n_pool, n_labels = p.shape
    u = label_uncertainty(p, t)
    overall = u.max(axis=1)
    predicted = (p >= t[None, :]).sum(axis=0)
    label_order = np.argsort(predicted, kind="stable")
    index = np.arange(n_pool)
    queues = [np.lexsort((index, -u[:, j])) for j in label_order]
    final = np.lexsort((index, -overall))
    x = ngrams.tocsr() if ngrams is not None else None
    sizes = np.asarray(x.sum(axis=1)).ravel().astype(np.float64) if x is not None else None
    used = np.zeros(n_pool, dtype=bool)  # picked or skipped as a near-duplicate
    picks: list[int] = []
    by_label: dict[int, int] = {}
    skipped = 0

    def near_duplicate(c: int) -> bool:
        if x is None or sizes is None or not picks:
            return False
        inter = np.asarray((x[c] @ x[picks].T).todense()).ravel().astype(np.float64)
        jac = inter / (sizes[c] + sizes[picks] - inter)
        return bool(jac.max() >= similarity)

    def take_from(queue: np.ndarray, pos: int, label: int | None) -> tuple[int, bool]:
        """Advance ``queue`` from ``pos`` to the next acceptable text; returns (pos, picked)."""
        nonlocal skipped
        while pos < n_pool:
            c = int(queue[pos])
            pos += 1
            if used[c]:
                continue
            if label is not None and u[c, label] < min_uncertainty:
                return n_pool, False  # this label has no uncertain text left
            used[c] = True
            if near_duplicate(c):
                skipped += 1
                continue
            picks.append(c)
            if label is not None:
                by_label[label] = by_label.get(label, 0) + 1
            return pos, True
        return pos, False

    positions = [0] * n_labels
    active = [True] * n_labels
    while len(picks) < n and any(active):
        for k, label in enumerate(label_order):
            if len(picks) >= n:
                break
            if not active[k]:
                continue
            positions[k], ok = take_from(queues[k], positions[k], int(label))
            active[k] = ok
    pos = 0
    while len(picks) < n and pos < n_pool:
        pos, _ = take_from(final, pos, None)
    order = np.array(picks, dtype=np.int64)
    info = {"skipped_near_duplicates": skipped, "picked_by_label": {int(k): v for k, v in by_label.items()}}
    return order, overall[order], info


# --------------------------------------------------------------------------- tasks
def model_version(model_path: str | Path) -> str:
    """``<model name>@<first 10 hex of the weights' SHA-256>`` of a model directory."""
    path = Path(model_path)
    name = path.name
    metrics = path / "metrics.json"
    if metrics.is_file():
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            name = json.loads(metrics.read_text("utf-8")).get("train", {}).get("model_name") or name
    for weights in ("model.safetensors", "onnx/model.int8.onnx", "onnx/model.onnx"):
        file = path / weights
        if file.is_file():
            digest = hashlib.sha256()
            with file.open("rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
            return f"{name}@{digest.hexdigest()[:10]}"
    return f"{name}@unknown"


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def build_tasks(pool: Pool, picks: Sequence[int], scores: Sequence[float], probs: np.ndarray,
                thresholds: np.ndarray, labels: Sequence[str], *, strategy: str, version: str,
                batch: str, source: str = "real") -> list[dict[str, Any]]:
    """Label Studio tasks for the picked pool texts, in pick order.

    ``probs`` holds the picked texts' scores (row i for ``picks[i]``).
    """
    u_label = label_uncertainty(probs, thresholds)
    tasks = []
    for rank, (i, score, p, u) in enumerate(zip(picks, scores, probs, u_label, strict=True), start=1):
        fired = [name for name, s, t in zip(labels, p, thresholds, strict=True) if s >= t]
        uncertainty = float(u.max())
        data: dict[str, Any] = {
            "text": pool.texts[i],
            "id": pool.ids[i],
            "source": source,
            "batch": batch,
            "selection_strategy": strategy,
            "selection_rank": rank,
            "selection_score": round(float(score), 6),
            "uncertainty": round(uncertainty, 6),
            "uncertain_label": labels[int(u.argmax())],
            "predicted_labels": "; ".join(fired),
        }
        data.update({f"pool_{k}": _json_value(v) for k, v in pool.extras[i].items()})
        result = [{"id": f"pred-{rank}", "from_name": "labels", "to_name": "text", "type": "choices",
                   "value": {"choices": fired}}] if fired else []
        tasks.append({"data": data, "predictions": [{"model_version": version,
                                                     "score": round(1.0 - uncertainty, 6),
                                                     "result": result}]})
    return tasks


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.select``."""
    parser = argparse.ArgumentParser(prog="python -m training.select", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="trained model directory (or Hub repo id)")
    parser.add_argument("--pool", required=True, help="unlabelled posts: .csv, .tsv, .jsonl, .parquet or .txt")
    parser.add_argument("--n", type=int, required=True, help="how many texts to select")
    parser.add_argument("--strategy", choices=STRATEGIES, default="diverse")
    parser.add_argument("--output", required=True, help="Label Studio tasks JSON to write")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    parser.add_argument("--id-column", default=None, help="column identifying rows (default: row-<n>)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                        help="dataset whose texts (and near-duplicates) are never selected")
    parser.add_argument("--exclude", nargs="*", default=[],
                        help="earlier task files whose texts are not selected again")
    parser.add_argument("--batch", default=None, help="batch name stored in each task (default: output file stem)")
    parser.add_argument("--source", choices=["real", "annotated", "handwritten"], default="real",
                        help="the 'source' the texts get in the dataset")
    parser.add_argument("--seed", type=int, default=0, help="random strategy's seed")
    parser.add_argument("--similarity", type=float, default=NEAR_DUPLICATE_THRESHOLD,
                        help="character 5-gram Jaccard at which two texts count as near-duplicates")
    parser.add_argument("--min-uncertainty", type=float, default=DEFAULT_MIN_UNCERTAINTY,
                        help="diverse: a label stops taking turns below this uncertainty")
    parser.add_argument("--allow-fewer", action="store_true",
                        help="select every selectable text when there are fewer than --n")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--stop-set", default=None,
                        help="fixed unlabelled texts on which to compare --previous-model-dir with this model")
    parser.add_argument("--previous-model-dir", default=None, help="the previous round's model (stopping signal)")
    parser.add_argument("--report", default=None, help="write a JSON summary of the selection here")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the CLI with parsed arguments; returns the exit code."""
    try:
        pool = read_pool(args.pool, args.text_column, args.id_column)
        read_rows = len(pool)
        pool, ngrams = drop_known(pool, reference_texts(args.data_dir, args.exclude), args.similarity)
        if not len(pool):
            raise SelectionError(f"{args.pool}: none of its {read_rows} usable texts can be selected "
                                 f"({_skipped_text(pool.skipped)})")
        if len(pool) < args.n and not args.allow_fewer:
            raise SelectionError(
                f"{args.pool}: only {len(pool)} texts can be selected ({pool.rows} rows; "
                f"{_skipped_text(pool.skipped)}), fewer than --n {args.n}; lower --n or pass --allow-fewer")
    except SelectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    from inference.classifier import Classifier

    try:
        clf = Classifier.from_pretrained(args.model_dir)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return EXIT_MODEL
    thresholds = np.array([clf.thresholds[name] for name in clf.labels])
    n = min(args.n, len(pool))
    info: dict[str, Any] = {}
    if args.strategy == "random":
        picks, scores = select_random(len(pool), n, args.seed)
        probs = clf.predict_proba([pool.texts[i] for i in picks], batch_size=args.batch_size)
    else:
        all_probs = clf.predict_proba(pool.texts, batch_size=args.batch_size)
        if args.strategy == "uncertainty":
            picks, scores = select_uncertainty(all_probs, thresholds, n)
        else:
            picks, scores, info = select_diverse(all_probs, thresholds, n, ngrams, args.similarity,
                                                 args.min_uncertainty)
            info["picked_by_label"] = {clf.labels[k]: v for k, v in info["picked_by_label"].items()}
        probs = all_probs[picks]
    version = model_version(clf.info.path if clf.info else args.model_dir)
    batch = args.batch or Path(args.output).stem
    tasks = build_tasks(pool, picks.tolist(), scores.tolist(), probs, thresholds, clf.labels,
                        strategy=args.strategy, version=version, batch=batch, source=args.source)
    from inference.modeldir import atomic_write_text

    atomic_write_text(args.output, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    fired = probs >= thresholds[None, :]
    report: dict[str, Any] = {
        "pool": str(args.pool), "rows": pool.rows, "selectable": len(pool), "skipped": pool.skipped,
        "strategy": args.strategy, "selected": len(tasks), "model_version": version, "batch": batch,
        "output": str(args.output), "mean_uncertainty": float(label_uncertainty(probs, thresholds).max(axis=1).mean()),
        "flagged": int(fired.any(axis=1).sum()),
        "predicted_per_label": {name: int(fired[:, j].sum()) for j, name in enumerate(clf.labels)}, **info,
    }
    print(f"selected {len(tasks)} of {len(pool)} selectable texts ({pool.rows} rows; "
          f"{_skipped_text(pool.skipped)}) by '{args.strategy}' with {version}; {report['flagged']} "
          f"pre-annotated with a label, mean uncertainty {report['mean_uncertainty']:.2f} -> {args.output}",
          file=sys.stderr)
    if args.stop_set:
        from training.stopping import format_agreement, stop_set_agreement

        try:
            stop_texts = read_pool(args.stop_set, args.text_column).texts
            report["stop_set"] = stop_set_agreement(args.previous_model_dir, args.model_dir, stop_texts,
                                                    args.batch_size)
        except (SelectionError, FileNotFoundError, ValueError) as exc:
            print(f"error: stop set: {exc}", file=sys.stderr)
            return EXIT_INPUT
        print(format_agreement(report["stop_set"]), file=sys.stderr)
    if args.report:
        atomic_write_text(args.report, json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.select``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    if bool(args.stop_set) != bool(args.previous_model_dir):
        parser.error("--stop-set and --previous-model-dir go together")
    if not 0 < args.similarity <= 1:
        parser.error("--similarity must lie in (0, 1]")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

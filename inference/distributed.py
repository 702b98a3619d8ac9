"""Distributed batch scoring on Ray Data (extra ``[ray]``).

    python -m inference.distributed --model-dir models/minilm --input "posts/*.parquet" --output scored/
    python -m inference.distributed --address ray://head:10001 --input s3://bucket/posts/ \
        --output s3://bucket/scored/ ...

:func:`score_dataset` adds the same columns as the single-process CLI (``labels``, ``flagged``,
``score_<label>``, ``error``) with ``Dataset.map_batches`` and a callable class, so each Ray
actor loads the :class:`~inference.classifier.Classifier` once and reuses it for every batch.
The same code runs on a local instance (``ray.init(num_cpus=2)``) and on an existing cluster
(``ray.init(address=...)``); see docs/scale.md for sizing actors per node.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from typing import Any

EXIT_RAY_UNAVAILABLE = 4


class ClassifierActor:
    """Ray Data callable class: loads the model once per actor, scores Arrow batches."""

    def __init__(self, model_dir: str, text_column: str = "text", batch_size: int = 64,
                 backend: str = "auto", threshold: float | None = None, num_threads: int | None = None) -> None:
        from inference.classifier import Classifier

        self.clf = Classifier.from_pretrained(model_dir, backend=backend, device="auto",
                                              num_threads=num_threads)
        self.text_column = text_column
        self.batch_size = batch_size
        self.threshold = threshold

    def __call__(self, batch: Any) -> Any:
        from inference.cli import added_types, output_columns, score_rows
        from inference.tabular import to_arrow

        tasks = self.clf.auxiliary_tasks
        _, added = output_columns([], self.clf.labels, tasks)
        scored = score_rows(batch.to_pylist(), self.clf, self.text_column, None, self.batch_size,
                            self.threshold)
        # input columns keep their Arrow types; the added ones get fixed types, so every block
        # (and every output file) has the same schema
        new = to_arrow(scored, added, added_types(self.clf.labels, tasks))
        for name in added:
            batch = batch.append_column(name, new.column(name))
        return batch


def score_dataset(
    ds: Any,
    model_dir: str,
    text_column: str = "text",
    batch_size: int = 64,
    concurrency: int = 1,
    num_cpus_per_actor: float = 1.0,
    rows_per_batch: int = 1024,
    backend: str = "auto",
    threshold: float | None = None,
    num_threads: int | None = None,
) -> Any:
    """Score a ``ray.data.Dataset`` that has a text column; returns a new, lazy Dataset.

    Args:
        ds: the input dataset (e.g. ``ray.data.read_parquet(...)``).
        model_dir: a model directory readable by every worker (shared disk or baked into the image).
        text_column: the column with the texts.
        batch_size: windows per forward pass inside each actor.
        concurrency: number of actors (model copies); with ``num_cpus_per_actor`` this sets the
            cluster share used. Leave CPUs for Ray's read and write tasks: actors that take every
            CPU stall the pipeline.
        num_cpus_per_actor: CPUs Ray reserves for each actor (match ``num_threads``).
        rows_per_batch: rows handed to an actor at a time.
        backend, threshold, num_threads: passed to :meth:`Classifier.from_pretrained` / predict.
    """
    from inference.auxiliary import tasks_from_config
    from inference.cli import output_columns
    from inference.modeldir import read_model_info

    names = list(ds.schema().names)
    if text_column not in names:
        raise ValueError(f"the dataset has no column {text_column!r}; columns: {', '.join(names)}")
    info = read_model_info(model_dir)
    tasks = tasks_from_config(info.config, str(info.path / "config.json"))
    conflicts = [c for c in names if c in output_columns([], info.taxonomy.names, tasks)[1]]
    if conflicts:
        raise ValueError(f"the dataset already has the output column(s) {', '.join(conflicts)}")
    import ray

    return ds.map_batches(
        ClassifierActor,
        fn_constructor_kwargs={"model_dir": str(model_dir), "text_column": text_column,
                               "batch_size": batch_size, "backend": backend, "threshold": threshold,
                               "num_threads": num_threads},
        batch_size=rows_per_batch,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus_per_actor,
    )


def _expand(inputs: Sequence[str]) -> list[str]:
    paths: list[str] = []
    for item in inputs:
        if "://" in item or not any(ch in item for ch in "*?["):
            paths.append(item)
        else:
            matched = sorted(glob.glob(item))
            if not matched:
                raise FileNotFoundError(f"no file matches {item!r}")
            paths.extend(matched)
    return paths


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m inference.distributed``."""
    parser = argparse.ArgumentParser(prog="python -m inference.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--input", required=True, nargs="+", help="Parquet files, globs, folders or s3:// URIs")
    parser.add_argument("--output", required=True, help="output folder (local or s3://) for Parquet files")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (e.g. auto or ray://head:10001); default: start a local instance")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local instance")
    parser.add_argument("--concurrency", type=int, default=1, help="number of model actors")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rows-per-batch", type=int, default=1024)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--threshold", type=float, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference.distributed``."""
    args = build_parser().parse_args(argv)
    try:
        import ray
    except ImportError:
        print("error: Ray is not installed: pip install 'netralitas-asn-classifier[ray]'", file=sys.stderr)
        return EXIT_RAY_UNAVAILABLE
    try:
        paths = _expand(args.input)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.num_cpus and not args.address and args.concurrency * args.cpus_per_actor > args.num_cpus - 1:
        print(f"error: {args.concurrency} actors x {args.cpus_per_actor} CPUs leave no CPU of the "
              f"{args.num_cpus} for reading and writing; lower --concurrency or --cpus-per-actor",
              file=sys.stderr)
        return 1
    try:
        if args.address:
            ray.init(address=args.address, log_to_driver=False)
        else:
            ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # Ray raises many types when it cannot start
        print(f"error: Ray could not start: {exc}", file=sys.stderr)
        return EXIT_RAY_UNAVAILABLE
    try:
        ds = ray.data.read_parquet(paths)
        scored = score_dataset(ds, args.model_dir, text_column=args.text_column, batch_size=args.batch_size,
                               concurrency=args.concurrency, num_cpus_per_actor=args.cpus_per_actor,
                               rows_per_batch=args.rows_per_batch, backend=args.backend,
                               threshold=args.threshold)
        scored.write_parquet(args.output)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    print(f"wrote scored Parquet files to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Distributed scoring on a local Ray instance equals single-process Classifier.predict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import MINI_DATA, PY, python_env

from inference import Classifier
from inference.distributed import EXIT_RAY_UNAVAILABLE

pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_every_row_comes_out_once_with_single_process_scores(trained_model_dir: Path, tmp_path: Path) -> None:
    rows = []
    for split in ("train", "validation", "test"):
        for line in (MINI_DATA / f"{split}.jsonl").read_text("utf-8").splitlines():
            r = json.loads(line)
            rows.append({"id": r["id"], "text": r["text"], "platform": "fb"})
    rows.append({"id": "empty", "text": "", "platform": "x"})
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:20]), src / "part-a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[20:]), src / "part-b.parquet")
    out = tmp_path / "out"
    # Ray start-up is bounded by the subprocess timeout; a platform where Ray cannot start is a
    # skip with the reason, anything else is a failure.
    result = subprocess.run(
        [PY, "-m", "inference.distributed", "--model-dir", str(trained_model_dir), "--input",
         str(src / "*.parquet"), "--output", str(out), "--num-cpus", "2", "--concurrency", "2",
         "--cpus-per-actor", "0.5",
         "--rows-per-batch", "7", "--backend", "torch"],
        capture_output=True, text=True, env=python_env(RAY_DEDUP_LOGS="0"), timeout=600,
    )
    if result.returncode == EXIT_RAY_UNAVAILABLE:
        pytest.skip(f"Ray cannot start on this platform: {result.stderr.strip()[-500:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    scored = pq.read_table(out).to_pylist()
    ids = [r["id"] for r in scored]
    assert sorted(ids) == sorted(r["id"] for r in rows), "every row exactly once"
    clf = Classifier.from_pretrained(trained_model_dir, backend="torch")
    by_id = {r["id"]: r for r in scored}
    texts = [r for r in rows if r["text"].strip()]
    for row, pred in zip(texts, clf.predict([r["text"] for r in texts]), strict=True):
        got = by_id[row["id"]]
        assert list(got["labels"]) == pred.labels
        assert got["flagged"] == pred.flagged
        assert got["score_kampanye_medsos"] == pytest.approx(pred.scores["kampanye_medsos"], abs=1e-5)
        assert got["platform"] == "fb"
    assert "empty text" in by_id["empty"]["error"]


def test_score_dataset_rejects_a_missing_text_column(trained_model_dir: Path) -> None:
    import ray

    from inference.distributed import score_dataset

    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # pragma: no cover - platform dependent
        pytest.skip(f"Ray cannot start on this platform: {exc}")
    try:
        ds = ray.data.from_items([{"isi": "teks"}])
        with pytest.raises(ValueError, match="no column 'text'; columns: isi"):
            score_dataset(ds, str(trained_model_dir))
    finally:
        ray.shutdown()


def test_local_run_refuses_actors_that_take_every_cpu(trained_model_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from inference.distributed import main

    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "tes"}]), src)
    code = main(["--model-dir", str(trained_model_dir), "--input", str(src), "--output", str(tmp_path / "o"),
                 "--num-cpus", "2", "--concurrency", "2", "--cpus-per-actor", "1"])
    assert code == 1
    assert "leave no CPU" in capsys.readouterr().err

"""The streaming CLI: real files through ``python -m inference``."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MINI_DATA, PY, python_env

from inference import Classifier
from inference.cli import main

ROWS = [json.loads(line) for line in (MINI_DATA / "train.jsonl").read_text("utf-8").splitlines()]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sample_rows() -> list[dict]:
    rows = [{"post_id": f"p{i}", "text": r["text"], "akun": f"@akun{i}"} for i, r in enumerate(ROWS[:10])]
    rows[3]["text"] = ""  # empty
    rows[6]["text"] = "   "  # whitespace
    return rows


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("out_ext", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("in_ext", ["csv", "jsonl", "parquet", "txt"])
def test_round_trip_keeps_every_row_and_column(tmp_path: Path, trained_model_dir: Path, in_ext: str,
                                               out_ext: str) -> None:
    rows = sample_rows()
    src = tmp_path / f"posts.{in_ext}"
    if in_ext == "csv":
        write_csv(src, rows)
    elif in_ext == "jsonl":
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    elif in_ext == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), src)
    else:
        src.write_text("".join(r["text"] + "\n" for r in rows), "utf-8")
    out = tmp_path / f"scored.{out_ext}"
    code = main(["--model-dir", str(trained_model_dir), "--input", str(src), "--output", str(out),
                 "--chunk-size", "3", "--batch-size", "2", "--backend", "torch", "--no-progress"])
    assert code == 0
    got = read_output(out)
    assert len(got) == len(rows)
    clf = Classifier.from_pretrained(trained_model_dir, backend="torch")
    expected_cols = (["text"] if in_ext == "txt" else list(rows[0])) + [
        "labels", "flagged", *[f"score_{n}" for n in clf.labels], "error"]
    assert list(got[0]) == expected_cols
    for original, scored in zip(rows, got, strict=True):
        if in_ext != "txt":
            assert scored["post_id"] == original["post_id"] and scored["akun"] == original["akun"]
        if original["text"].strip():
            pred = clf.predict(original["text"])
            labels = scored["labels"].split(";") if out_ext == "csv" and scored["labels"] else scored["labels"] or []
            assert labels == pred.labels
            assert float(scored["score_kampanye_medsos"]) == pytest.approx(pred.scores["kampanye_medsos"], abs=1e-5)
            assert scored["error"] in (None, "")
        else:
            assert "empty text" in scored["error"]
            assert scored["labels"] in (None, "")


def test_missing_text_column_lists_available_columns(tmp_path: Path, trained_model_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "p.csv", sample_rows())
    code = main(["--model-dir", str(trained_model_dir), "--input", str(src), "--output",
                 str(tmp_path / "o.csv"), "--text-column", "isi"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no column 'isi'" in err and "post_id, text, akun" in err
    assert not (tmp_path / "o.csv").exists()


def test_bad_rows_in_jsonl_still_come_out(tmp_path: Path, trained_model_dir: Path) -> None:
    src = tmp_path / "p.jsonl"
    src.write_text(
        json.dumps({"id": 1, "text": ROWS[0]["text"]}) + "\n"
        + '{"id": 2, "text": "kurang kurung"\n'
        + json.dumps({"id": 3, "text": None}) + "\n"
        + json.dumps({"id": 4, "text": 12345}) + "\n"
        + json.dumps({"id": 5}) + "\n"
        + json.dumps(["not", "an", "object"]) + "\n"
        + json.dumps({"id": 7, "text": ROWS[1]["text"], "lang": "id"}) + "\n",
        "utf-8",
    )
    out = tmp_path / "o.jsonl"
    assert main(["--model-dir", str(trained_model_dir), "--input", str(src), "--output", str(out),
                 "--id-column", "id", "--chunk-size", "2", "--no-progress", "--backend", "torch"]) == 0
    got = read_output(out)
    assert len(got) == 7
    assert got[0]["error"] is None and isinstance(got[0]["labels"], list)
    assert "line 2: invalid JSON" in got[1]["error"]
    assert "missing value" in got[2]["error"] and "(id 3)" in got[2]["error"]
    assert "is a int, not text" in got[3]["error"]
    assert "missing value" in got[4]["error"]
    assert "line 6: not a JSON object" in got[5]["error"]
    assert got[6]["lang"] == "id" and got[6]["error"] is None


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--input", "nope.csv"], 1, "input file not found"),
    (["--output", "out.xlsx"], 1, "unsupported file type '.xlsx'"),
    (["--batch-size", "0"], 2, "--batch-size and --chunk-size must be >= 1"),
    (["--threshold", "2"], 2, "strictly between 0 and 1"),
    (["--model-dir", "no-model"], 3, "cannot load the model"),
    # the tiny model's WordPiece vocabulary cannot run on the compact Unigram tokenizer
    (["--tokenizer-engine", "compact"], 3, "model type 'WordPiece' is not Unigram"),
])
def test_usage_errors_have_documented_exit_codes(tmp_path: Path, trained_model_dir: Path, argv: list[str],
                                                 code: int, message: str, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", sample_rows())
    base = {"--model-dir": str(trained_model_dir), "--input": "in.csv", "--output": "out.csv"}
    for i in range(0, len(argv), 2):
        base[argv[i]] = argv[i + 1]
    assert main([x for kv in base.items() for x in kv] + ["--no-progress"]) == code
    assert message in capsys.readouterr().err


def big_csv(path: Path, n: int) -> Path:
    rows = [{"id": i, "text": ROWS[i % len(ROWS)]["text"] + f" (salinan {i})"} for i in range(n)]
    return write_csv(path, rows)


GATED_CLI = Path(__file__).resolve().parents[1] / "helpers" / "gated_cli.py"
#: safety net only: how long a gated run may take to reach its gate before the test gives up
GATE_WAIT_LIMIT_S = 600.0


def start_gated_cli(args: list[str], marker: Path, after_chunks: int) -> subprocess.Popen[str]:
    """The real CLI in a subprocess that saves ``after_chunks`` chunks, creates ``marker`` and
    then waits for a signal (see tests/helpers/gated_cli.py)."""
    env = python_env(GATED_CLI_MARKER=str(marker), GATED_CLI_AFTER_CHUNKS=str(after_chunks))
    return subprocess.Popen([PY, str(GATED_CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for_gate(proc: subprocess.Popen[str], marker: Path) -> None:
    """Block until the gated run reaches its gate; fail clearly if it exits or never gets there."""
    deadline = time.monotonic() + GATE_WAIT_LIMIT_S
    while not marker.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the CLI exited with code {proc.returncode} before reaching its gate:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the CLI did not reach its gate within {GATE_WAIT_LIMIT_S:.0f} s (safety net, not a "
                        f"timing check):\n{err[-3000:]}")
        time.sleep(0.05)


def part_names(parts: Path) -> list[str]:
    return sorted(p.name for p in parts.glob("part-*"))


@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_resume_after_a_killed_run_equals_an_uninterrupted_run(tmp_path: Path, trained_model_dir: Path,
                                                                out_ext: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import inference.cli as cli

    rows, chunk, killed_after = 120, 20, 3  # 6 chunks; the run is killed while chunk 4 is due
    src = big_csv(tmp_path / "big.csv", rows)
    common = ["--model-dir", str(trained_model_dir), "--input", str(src), "--chunk-size", str(chunk),
              "--batch-size", "8", "--backend", "torch", "--no-progress"]
    reference = tmp_path / f"reference.{out_ext}"
    assert main([*common, "--output", str(reference)]) == 0

    out = tmp_path / f"resumed.{out_ext}"
    parts = tmp_path / f"resumed.{out_ext}.parts"
    marker = tmp_path / "gate"
    proc = start_gated_cli([*common, "--output", str(out)], marker, after_chunks=killed_after)
    wait_for_gate(proc, marker)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert part_names(parts) == [f"part-{i:06d}" for i in range(killed_after)], \
        "exactly the chunks completed before the kill must be on disk"
    assert not out.exists(), "no output file may appear before the run completes"

    scored_chunks = []
    real_score_rows = cli.score_rows

    def counting_score_rows(chunk_rows: list[dict], *args: object, **kwargs: object) -> list[dict]:
        scored_chunks.append(chunk_rows[0]["id"])
        return real_score_rows(chunk_rows, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cli, "score_rows", counting_score_rows)
    assert main([*common, "--output", str(out), "--resume"]) == 0
    assert scored_chunks == [str(i * chunk) for i in range(killed_after, rows // chunk)], \
        "the resumed run must score only the chunks the killed run had not completed"
    assert read_output(out) == read_output(reference)
    assert not parts.exists()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_or_sigterm_keeps_completed_chunks(tmp_path: Path, trained_model_dir: Path, sig: int,
                                                  code: int) -> None:
    rows, chunk, interrupted_after = 60, 10, 2
    src = big_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "o.jsonl"
    parts = tmp_path / "o.jsonl.parts"
    marker = tmp_path / "gate"
    proc = start_gated_cli(["--model-dir", str(trained_model_dir), "--input", str(src), "--output", str(out),
                            "--chunk-size", str(chunk), "--backend", "torch", "--no-progress"],
                           marker, after_chunks=interrupted_after)
    wait_for_gate(proc, marker)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "rerun with --resume" in err
    assert part_names(parts) == [f"part-{i:06d}" for i in range(interrupted_after)], \
        "exactly the chunks completed before the interrupt must be kept"
    assert not out.exists(), "an interrupted run must not write the output file"
    kept = [json.loads(line) for name in part_names(parts) for line in (parts / name).read_text("utf-8").splitlines()]
    assert [r["id"] for r in kept] == [str(i) for i in range(interrupted_after * chunk)]
    assert all(r["error"] is None and isinstance(r["labels"], list) for r in kept), "kept chunks must be scored"


def test_resume_refuses_when_the_input_changed(tmp_path: Path, trained_model_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = big_csv(tmp_path / "in.csv", 20)
    out = tmp_path / "o.csv"
    parts = tmp_path / "o.csv.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"input": "elsewhere.csv"}), "utf-8")
    code = main(["--model-dir", str(trained_model_dir), "--input", str(src), "--output", str(out),
                 "--resume", "--no-progress"])
    assert code == 1
    assert "cannot resume" in capsys.readouterr().err

"""The training-step benchmark really trains a few steps and reports measured and estimated rows."""

from pathlib import Path

from training.step_benchmark import main


def test_step_benchmark_writes_measured_and_estimated_rows(tiny_backbone: Path, tmp_path: Path) -> None:
    md = tmp_path / "bench.md"
    assert main(["--model-name-or-path", str(tiny_backbone), "--batch-size", "4", "--seq-len", "32",
                 "--steps", "2", "--markdown", str(md)]) == 0
    text = md.read_text("utf-8")
    assert "| this CPU (measured) |" in text
    assert "NVIDIA A100 (bf16), *estimate*" in text

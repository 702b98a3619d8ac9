"""The benchmark really runs every configuration and writes JSON and markdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import MINI_DATA

from inference.benchmark import main


def test_benchmark_writes_figures_for_every_backend(trained_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\nintro kept\n", "utf-8")
    out = tmp_path / "bench.json"
    assert main(["--model-dir", str(model), "--n", "60", "--data", str(MINI_DATA / "train.jsonl"),
                 "--batch-size", "16", "--json", str(out), "--markdown", str(md), "--name", "tiny"]) == 0
    result = json.loads(out.read_text("utf-8"))
    assert [r["config"] for r in result["runs"]] == ["torch-fixed", "torch-dynamic", "onnx-fp32", "onnx-int8"]
    for r in result["runs"]:
        assert r["texts"] == 60 and r["texts_per_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["tokenize_texts_per_s"] > 0 and r["tokenizer_engine"] == "tokenizers"  # WordPiece: the library
        assert 0.0 <= r["label_agreement"] <= 1.0
    fixed, dynamic = result["runs"][0], result["runs"][1]
    assert fixed["padded_tokens"] > dynamic["padded_tokens"]  # fixed padding really pads to max_length
    assert result["runs"][2]["label_agreement"] == 1.0  # ONNX fp32 reproduces PyTorch
    assert not result["runs"][3]["torch_imported"], "the ONNX path must not import torch"
    text = md.read_text("utf-8")
    assert "intro kept" in text and "<!-- bench:tiny -->" in text and "| onnx-int8 |" in text
    from inference.int8_schemes import int8_schemes

    scheme_names = {s.name for s in int8_schemes(model / "onnx" / "model.onnx", [{"input_ids": None}])}
    assert result["int8_scheme"] in scheme_names
    assert f"int8 scheme chosen by the export's drift check: {result['int8_scheme']}" in text
    # a second run replaces its section instead of appending another
    assert main(["--model-dir", str(model), "--n", "20", "--data", str(MINI_DATA / "train.jsonl"),
                 "--json", str(out), "--markdown", str(md), "--name", "tiny",
                 "--configs", "torch-dynamic,onnx-int8"]) == 0
    assert md.read_text("utf-8").count("<!-- bench:tiny -->") == 1

"""Real ONNX export and int8 quantisation of the tiny trained model."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA, PY, python_env

from inference import Classifier
from inference.export import ExportRefused, export_model, main

CHECK = MINI_DATA / "train.jsonl"
TEXTS = [json.loads(line)["text"] for line in CHECK.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, trained_model_dir: Path) -> Path:
    import shutil

    target = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(trained_model_dir, target)
    assert main(["--model-dir", str(target), "--quantize", "int8", "--check-data", str(CHECK),
                 "--min-agreement", "0.9", "--min-label-set-agreement", "0.5"]) == 0
    return target


def test_export_writes_fp32_int8_and_a_report(exported: Path) -> None:
    assert (exported / "onnx" / "model.onnx").is_file()
    assert (exported / "onnx" / "model.int8.onnx").is_file()
    report = json.loads((exported / "onnx" / "export_report.json").read_text("utf-8"))
    fp32, int8 = report["onnx/model.onnx"], report["onnx/model.int8.onnx"]
    assert fp32["label_set_agreement"] == 1.0 and fp32["label_agreement"] == 1.0
    assert fp32["max_abs_score_diff"] < 1e-4
    assert int8["label_agreement"] >= 0.9 and int8["label_set_agreement"] <= int8["label_agreement"]
    assert int8["file_mb"] < fp32["file_mb"]
    assert not list((exported / "onnx").glob(".export-*")), "temporary files must be cleaned up"


def test_torch_and_onnx_agree(exported: Path) -> None:
    torch_preds = Classifier.from_pretrained(exported, backend="torch").predict(TEXTS)
    fp32 = Classifier.from_pretrained(exported, backend="onnx", onnx_file="onnx/model.onnx").predict(TEXTS)
    int8 = Classifier.from_pretrained(exported, backend="onnx").predict(TEXTS)
    for t, f in zip(torch_preds, fp32, strict=True):
        assert t.labels == f.labels
        assert t.scores == pytest.approx(f.scores, abs=1e-4)
    agree = sum(t.labels == q.labels for t, q in zip(torch_preds, int8, strict=True)) / len(TEXTS)
    assert agree >= 0.9


def test_auto_backend_prefers_int8_onnx_on_cpu(exported: Path, trained_model_dir: Path) -> None:
    assert Classifier.from_pretrained(exported, backend="auto", device="cpu").backend.name == "onnx-int8"
    assert Classifier.from_pretrained(trained_model_dir, backend="auto", device="cpu").backend.name == "torch"


def test_onnx_backend_without_an_export_says_how_to_make_one(trained_model_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"python -m inference\.export"):
        Classifier.from_pretrained(trained_model_dir, backend="onnx")


def test_onnx_prediction_works_without_torch(exported: Path) -> None:
    code = textwrap.dedent(f"""
        import sys, json
        sys.modules["torch"] = None  # as if torch were not installed
        from inference import Classifier
        clf = Classifier.from_pretrained({str(exported)!r}, backend="auto")
        preds = clf.predict({TEXTS[:5]!r})
        print(json.dumps({{"backend": clf.backend.name, "labels": [p.labels for p in preds],
                           "torch": sys.modules["torch"] is None}}))
    """)
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=python_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == "onnx-int8" and out["torch"] is True
    expected = Classifier.from_pretrained(exported, backend="onnx").predict(TEXTS[:5])
    assert out["labels"] == [p.labels for p in expected]


def test_export_refuses_when_agreement_is_too_low(model_copy: Path) -> None:
    before = sorted(p.name for p in (model_copy).iterdir())
    # Demanding more than perfect agreement must always refuse: nothing may be written.
    with pytest.raises(ExportRefused, match="agreement with PyTorch below 101% of decisions"):
        export_model(model_copy, check_data=CHECK, min_agreement=1.01)
    assert not (model_copy / "onnx" / "model.onnx").exists()
    assert not (model_copy / "onnx" / "model.int8.onnx").exists()
    assert sorted(p.name for p in model_copy.iterdir() if p.name != "onnx") == [b for b in before if b != "onnx"]


def test_export_cli_exit_code_and_message_on_refusal(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--model-dir", str(model_copy), "--check-data", str(CHECK), "--min-agreement", "1.01"])
    assert code == 1
    assert "ONNX export refused" in capsys.readouterr().err


def test_export_with_a_relative_model_dir(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model_copy.parent)
    assert main(["--model-dir", model_copy.name, "--check-data", str(CHECK), "--quantize", "none"]) == 0
    assert (model_copy / "onnx" / "model.onnx").is_file()


def test_export_needs_check_texts(model_copy: Path, tmp_path: Path) -> None:
    args = json.loads((model_copy / "training_args.json").read_text("utf-8"))
    args["data"]["data_dir"] = str(tmp_path / "gone")
    (model_copy / "training_args.json").write_text(json.dumps(args), "utf-8")
    with pytest.raises(FileNotFoundError, match="--check-data"):
        export_model(model_copy)
    assert main(["--model-dir", str(model_copy)]) == 2, "bad input is exit 2, a drift refusal is exit 1"


def test_cli_can_pick_the_fp32_onnx_file(exported: Path, tmp_path: Path) -> None:
    import csv

    from inference.cli import main as cli

    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS[:6]) + "\n", "utf-8")
    out = tmp_path / "out.csv"
    assert cli(["--model-dir", str(exported), "--input", str(src), "--output", str(out), "--backend", "onnx",
                "--onnx-file", "onnx/model.onnx", "--no-progress"]) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    torch_preds = Classifier.from_pretrained(exported, backend="torch").predict(TEXTS[:6])
    assert [r["labels"].split(";") if r["labels"] else [] for r in rows] == [p.labels for p in torch_preds]


def test_int8_schemes_go_from_all_int8_to_fp32_fallbacks(exported: Path) -> None:
    from inference.export import calibration_batches
    from inference.int8_schemes import int8_schemes

    fp32 = exported / "onnx" / "model.onnx"
    calibration = calibration_batches(exported, ["input_ids", "attention_mask", "token_type_ids"])
    assert calibration and calibration[0]["input_ids"].dtype == np.int64
    schemes = int8_schemes(fp32, calibration)
    assert [s.name for s in schemes] == [
        "all weights int8", "static int8 (QDQ, calibrated)", "weight-only int8 (blocks of 16)",
        "classifier layer in fp32", "feed-forward output in fp32", "feed-forward layers in fp32"]
    layers = json.loads((exported / "config.json").read_text("utf-8"))["num_hidden_layers"]
    assert [s.fp32_nodes for s in schemes] == [0, 0, 0, 1, 1 + layers, 1 + 2 * layers]
    report = json.loads((exported / "onnx" / "export_report.json").read_text("utf-8"))
    assert report["onnx/model.int8.onnx"]["schemes_tried"][0]["scheme"] == "all weights int8"

    sizes = {}
    for scheme in schemes:
        target = exported.parent / f"{scheme.name}.onnx"
        scheme.quantize(fp32, target)
        sizes[scheme.name] = target.stat().st_size
        clf = Classifier.from_pretrained(exported, backend="onnx", onnx_file=str(target))
        assert len(clf.predict(TEXTS[:4])) == 4  # every scheme writes a model ONNX Runtime runs
    # Each fallback keeps more weights in float, so the file grows but stays below fp32.
    # (the tiny head is too small for ORT to quantise at all, so that step may not grow the file)
    assert (sizes["all weights int8"] <= sizes["classifier layer in fp32"] < sizes["feed-forward output in fp32"]
            < sizes["feed-forward layers in fp32"])
    assert max(sizes.values()) < fp32.stat().st_size


def test_every_scheme_tried_is_reported_when_all_fail(model_copy: Path) -> None:
    with pytest.raises(ExportRefused) as err:
        export_model(model_copy, check_data=CHECK, quantize="int8", min_agreement=1.01)
    for name in ("all weights int8", "static int8 (QDQ, calibrated)", "weight-only int8 (blocks of 16)",
                 "feed-forward layers in fp32"):
        assert name in str(err.value)


def test_refusal_names_the_int8_schemes_tried(model_copy: Path) -> None:
    with pytest.raises(ExportRefused, match=r"int8 schemes tried \(decisions / label sets\): all weights int8 "
                                            r".*classifier layer in fp32 .*feed-forward layers in fp32"):
        export_model(model_copy, check_data=CHECK, quantize="int8", min_agreement=1.01)


def test_label_set_gate_refuses_on_its_own(model_copy: Path) -> None:
    """Per-decision agreement may pass while whole label sets change: that gate refuses too."""
    with pytest.raises(ExportRefused, match=r"below 0% of decisions or 101% of label sets") as err:
        export_model(model_copy, check_data=CHECK, quantize=None, min_agreement=0.0, min_label_set_agreement=1.01)
    assert "onnx/model.onnx: decisions 100.00%, label sets 100.00%" in str(err.value)
    assert not (model_copy / "onnx" / "model.onnx").exists()


def test_embedding_rows_are_int8_with_one_scale_per_row() -> None:
    """The weight-only scheme's embedding table: each row keeps its own scale, so a row of tiny
    values is not flattened to zero by the largest row (as one scale per table would)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from inference.int8_schemes import quantize_embedding_rows, word_embedding_gather

    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)
    table[3] *= 1e-3  # a row of small values next to rows a thousand times larger
    small = np.zeros((4, 8), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["vectors"], name="word"),
         helper.make_node("Gather", ["small", "ids2"], ["other"], name="pos")],
        "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None]),
              helper.make_tensor_value_info("ids2", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, [None, 8]),
         helper.make_tensor_value_info("other", TensorProto.FLOAT, [None, 8])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(small, "small")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert word_embedding_gather(model) == "word"
    quantize_embedding_rows(model, "word")
    onnx.checker.check_model(model)
    names = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert "table" not in names and names["table_int8"].dtype == np.int8 and names["table_row_scale"].shape == (50, 1)
    ids = np.array([0, 3, 49, 3], dtype=np.int64)
    session = ort.InferenceSession(model.SerializeToString())
    vectors, _ = session.run(None, {"ids": ids, "ids2": np.array([0], dtype=np.int64)})
    error = np.abs(vectors - table[ids])
    assert (error <= np.abs(table[ids]).max(axis=1, keepdims=True) / 254 + 1e-7).all()
    assert np.abs(vectors[1]).max() > 0  # the small row survives

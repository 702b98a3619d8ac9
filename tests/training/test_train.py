"""training.train on a tiny BERT: artefacts, reload, pipeline, resume, offline, torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MINI_DATA, PY, TINY_TRAIN_FLAGS, python_env

from inference import Classifier
from training.train import compute_pos_weight, main, parse_args

TEXTS = [json.loads(line)["text"] for line in (MINI_DATA / "test.jsonl").read_text("utf-8").splitlines()]

EXPECTED_FILES = {
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "thresholds.json",
    "taxonomy.yaml", "training_args.json", "metrics.json", "README.md",
}


def test_model_directory_is_complete_and_pickle_free(trained_model_dir: Path) -> None:
    names = {p.name for p in trained_model_dir.iterdir()}
    assert names >= EXPECTED_FILES
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not [n for n in names if n.startswith("checkpoint-")]
    config = json.loads((trained_model_dir / "config.json").read_text("utf-8"))
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"]["0"] == "kampanye_medsos" and len(config["id2label"]) == 12
    assert config["taxonomy_version"] == "1.0.0"
    assert config["inference_max_length"] == 64 and config["inference_stride"] == 16
    thresholds = json.loads((trained_model_dir / "thresholds.json").read_text("utf-8"))
    assert set(thresholds["thresholds"]) == set(config["label2id"])
    metrics = json.loads((trained_model_dir / "metrics.json").read_text("utf-8"))
    for split in ("validation", "test"):
        assert {"micro_f1", "macro_f1", "any_violation_f1", "per_label"} <= set(metrics[split])
    card = (trained_model_dir / "README.md").read_text("utf-8")
    assert "never a verdict" in card and "Out-of-scope use" in card
    assert "| `kampanye_medsos` |" in card and "SKB 2022" in card


def test_loss_falls(trained_model_dir: Path) -> None:
    metrics = json.loads((trained_model_dir / "metrics.json").read_text("utf-8"))
    assert metrics["train"]["train_loss"] < 0.9
    # with pos_weight the untrained loss of this data is about 1.07; training must go well below
    log = json.loads((trained_model_dir / "metrics.json").read_text("utf-8"))["train"]
    assert log["global_step"] == 40 * 3


def test_reloading_gives_identical_scores(trained_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    a = Classifier.from_pretrained(trained_model_dir, backend="torch").predict(TEXTS)
    copy = tmp_path / "copy"
    shutil.copytree(trained_model_dir, copy)
    b = Classifier.from_pretrained(copy, backend="torch").predict(TEXTS)
    assert [p.scores for p in a] == [p.scores for p in b]


def test_plain_transformers_pipeline_loads_it(trained_model_dir: Path) -> None:
    from transformers import pipeline

    from inference.text import normalize_text

    pipe = pipeline("text-classification", model=str(trained_model_dir), top_k=None)
    out = pipe(normalize_text(TEXTS[0]))
    scores = {d["label"]: d["score"] for d in (out[0] if isinstance(out[0], list) else out)}
    ours = Classifier.from_pretrained(trained_model_dir, backend="torch").predict(TEXTS[0]).scores
    assert set(scores) == set(ours)
    for name, value in ours.items():
        assert scores[name] == pytest.approx(value, abs=1e-4)


def test_pos_weight_is_neg_over_pos_and_capped() -> None:
    import numpy as np

    y = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0]])
    weight = compute_pos_weight(y, cap=3.0)
    assert weight.tolist() == pytest.approx([1.5, 3.0, 3.0])


def test_flags_override_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: offline-minilm\nnum_train_epochs: 7\nlearning_rate: 1.0e-4\n", "utf-8")
    model_args, _, cls_args, args = parse_args(["--config", str(cfg), "--output-dir", str(tmp_path / "o"),
                                                "--learning-rate", "2e-5"])
    assert model_args.model_name_or_path == "offline-minilm"
    assert args.num_train_epochs == 7 and args.learning_rate == 2e-5
    assert args.eval_strategy == "epoch" and args.metric_for_best_model == "macro_f1"
    assert args.load_best_model_at_end and args.save_total_limit == 2
    assert not args.average_tokens_across_devices
    assert cls_args.use_pos_weight and model_args.max_length == 256


def test_output_dir_is_required_and_bad_config_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--output-dir is required"):
        parse_args(["--model-name-or-path", "offline-minilm"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lerning_rate: 1.0\n", "utf-8")
    with pytest.raises(SystemExit, match="lerning_rate"):
        parse_args(["--config", str(cfg), "--output-dir", str(tmp_path)])


def test_resume_from_checkpoint_continues_the_step_count(tiny_backbone: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = ["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out),
             *TINY_TRAIN_FLAGS, "--num-train-epochs", "2", "--keep-checkpoints", "true",
             "--save-total-limit", "3"]
    main(flags)
    first = json.loads((out / "metrics.json").read_text("utf-8"))["train"]
    assert first["global_step"] == 6
    assert (out / "checkpoint-6").is_dir()
    (out / "onnx").mkdir()
    (out / "onnx" / "model.int8.onnx").write_bytes(b"an export of the 6-step weights")
    main([*flags, "--num-train-epochs", "4", "--resume-from-checkpoint", "auto"])
    assert not (out / "onnx").exists(), "an ONNX export of the old weights must not outlive retraining"
    second = json.loads((out / "metrics.json").read_text("utf-8"))["train"]
    assert second["global_step"] == 12
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text("utf-8"))
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps == [3, 6, 9, 12], "the resumed run must continue from step 6, not restart"


def test_offline_hub_failure_is_fast_and_explains_the_ways_out(tmp_path: Path) -> None:
    env = python_env(HF_ENDPOINT="https://huggingface.invalid", HF_HUB_CACHE=str(tmp_path / "cache"))
    env.pop("HF_HUB_OFFLINE", None)
    start = time.time()
    result = subprocess.run(
        [PY, "-m", "training.train", "--model-name-or-path", "indobenchmark/indobert-base-p1",
         "--output-dir", str(tmp_path / "o"), "--data-dir", str(MINI_DATA)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    elapsed = time.time() - start
    assert result.returncode != 0
    assert elapsed < 15, f"took {elapsed:.1f} s"
    err = result.stderr
    assert "indobenchmark/indobert-base-p1" in err and "unreachable" in err
    assert "HF_HUB_OFFLINE=1" in err and "offline-minilm" in err and "local directory" in err


def test_hf_hub_offline_without_cache_fails_immediately(tmp_path: Path) -> None:
    from training.backbone import BackboneUnavailableError, resolve_backbone

    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        start = time.time()
        with pytest.raises(BackboneUnavailableError, match="HF_HUB_OFFLINE is set"):
            resolve_backbone("someone/not-cached-model-xyz")
        assert time.time() - start < 5
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        resolve_backbone(str(tmp_path / "missing" / "dir"))


def test_torchrun_two_processes_on_cpu_writes_one_model(tiny_backbone: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    result = subprocess.run(
        [PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "training.train", "--model-name-or-path", str(tiny_backbone), "--output-dir", str(out),
         *TINY_TRAIN_FLAGS, "--num-train-epochs", "2"],
        capture_output=True, text=True, env=python_env(OMP_NUM_THREADS="1"), timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "thresholds.json").is_file()
    train = json.loads((out / "metrics.json").read_text("utf-8"))["train"]
    assert train["world_size"] == 2
    # 24 examples, 8 per device and 2 devices: 2 steps per epoch
    assert train["global_step"] == 4
    assert result.stdout.count("model directory:") == 1


def test_epoch_metrics_are_computed_on_texts_in_dataset_order(tiny_backbone: Path, tmp_path: Path) -> None:
    """The per-epoch validation macro-F1 (used for early stopping and the best-model choice) must
    equal the final model's macro-F1 recomputed text by text at 0.5. Validation here repeats
    training texts of different lengths, so the memorised model fires and any reordering of
    windows during evaluation would show."""
    import shutil

    from inference.taxonomy import load_taxonomy
    from training.data import label_matrix, load_splits
    from training.metric_suite import classification

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(MINI_DATA / "train.jsonl", data / "train.jsonl")
    shutil.copy(MINI_DATA / "test.jsonl", data / "test.jsonl")
    rows = [json.loads(line) for line in (MINI_DATA / "train.jsonl").read_text("utf-8").splitlines()]
    (data / "validation.jsonl").write_text(
        "".join(json.dumps({**r, "id": f"val-{r['id']}"}) + "\n" for r in rows), "utf-8")
    out = tmp_path / "model"
    flags = list(TINY_TRAIN_FLAGS)
    flags[flags.index("--data-dir") + 1] = str(data)
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), *flags, "--num-train-epochs", "25",
          "--calibrate", "false"])  # epoch metrics are on raw scores; calibration would move the 0.5 cut
    history = json.loads((out / "metrics.json").read_text("utf-8"))["train"]["history"]
    last_eval = [h for h in history if "eval_macro_f1" in h][-1]
    taxonomy = load_taxonomy()
    val = load_splits(data, taxonomy)["validation"]
    probs = Classifier.from_pretrained(out, backend="torch").predict_proba([r["text"] for r in val])
    recomputed = classification(label_matrix(val, taxonomy), (probs >= 0.5).astype(int), taxonomy.names)
    assert recomputed["micro_f1"] > 0.3, "the check is only meaningful when the model fires"
    assert last_eval["eval_macro_f1"] == pytest.approx(recomputed["macro_f1"], abs=1e-6)
    assert last_eval["eval_micro_f1"] == pytest.approx(recomputed["micro_f1"], abs=1e-6)


def test_sample_limits_draw_across_the_file_not_its_head() -> None:
    from training.train import subset_records

    records = [{"id": i, "labels": ["a"] if i >= 500 else []} for i in range(1000)]  # a file grouped by kind
    sample = subset_records(records, 100, seed=42)
    ids = [r["id"] for r in sample]
    assert len(ids) == 100 == len(set(ids)) and ids == sorted(ids)
    assert 30 < sum(bool(r["labels"]) for r in sample) < 70, "both halves of the file must be sampled"
    assert subset_records(records, 100, seed=42) == sample  # reproducible
    assert subset_records(records, None, seed=1) is records and subset_records(records, 5000, seed=1) is records
    with pytest.raises(SystemExit, match="--max-eval-samples must be at least 1"):
        parse_args(["--output-dir", "x", "--max-eval-samples", "0"])

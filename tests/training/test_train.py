"""training.train on a tiny BERT: artefacts, reload, pipeline, resume, offline, torchrun."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
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


class NetworkRecorder:
    """Replaces the socket layer for one test: records every DNS lookup and connection attempt
    and fails it at once, as on a machine without internet. ``block_probe`` makes the Hub probe
    hang instead (as an unanswered DNS lookup does) until the test ends."""

    def __init__(self) -> None:
        self.probes: list[tuple[tuple[str, int], float | None]] = []
        self.lookups: list[str] = []
        self.connects: list[object] = []
        self.block_probe = False
        self.release = threading.Event()

    def create_connection(self, address: tuple[str, int], timeout: float | None = None,
                          *args: object, **kwargs: object) -> socket.socket:
        self.probes.append((address, timeout))
        if self.block_probe:
            self.release.wait(600)
        raise ConnectionRefusedError(f"no network in this test: {address}")

    def getaddrinfo(self, host: str, *args: object, **kwargs: object) -> list:
        self.lookups.append(host)
        raise socket.gaierror(f"no network in this test: {host}")

    def connect(self, sock: socket.socket, address: object) -> None:
        self.connects.append(address)
        raise ConnectionRefusedError(f"no network in this test: {address}")


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[NetworkRecorder]:
    """No internet, no Hub token, default endpoint and an empty Hugging Face cache."""
    import huggingface_hub.constants

    recorder = NetworkRecorder()
    monkeypatch.setattr(socket, "create_connection", recorder.create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", recorder.getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", recorder.connect)
    for name in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    yield recorder
    recorder.release.set()


def assert_lists_the_ways_out(message: str) -> None:
    for way in ("local directory", "HF_HUB_OFFLINE=1", "offline-me5-small", "offline-minilm"):
        assert way in message, f"the error must name the way out {way!r}:\n{message}"


def test_unreachable_hub_is_probed_once_with_the_configured_timeout(no_network: NetworkRecorder,
                                                                    tmp_path: Path) -> None:
    """Failing fast offline, by behaviour: one connection attempt to the Hub with
    --hub-probe-timeout, no retries, no download, and an error that names the ways out."""
    with pytest.raises(SystemExit) as raised:
        main(["--model-name-or-path", "indobenchmark/indobert-base-p1", "--output-dir", str(tmp_path / "o"),
              "--data-dir", str(MINI_DATA), "--hub-probe-timeout", "2.5"])
    message = str(raised.value.code)
    assert no_network.probes == [(("huggingface.co", 443), 2.5)], "exactly one probe with the configured timeout"
    assert no_network.lookups == [] and no_network.connects == [], \
        "nothing may try the network after the failed probe (no download, no retry)"
    assert message.startswith("error: Cannot load the backbone 'indobenchmark/indobert-base-p1'")
    assert "https://huggingface.co is unreachable" in message and "not in the local Hugging Face cache" in message
    assert_lists_the_ways_out(message)
    assert not (tmp_path / "o").exists(), "a failed start must not create the output directory"


def test_a_hanging_probe_is_ended_by_its_timeout(no_network: NetworkRecorder) -> None:
    """A lookup that never answers (the probe blocks) still ends in the error, via the probe timeout."""
    from training.backbone import BackboneUnavailableError, resolve_backbone

    no_network.block_probe = True
    with pytest.raises(BackboneUnavailableError, match="unreachable") as raised:
        resolve_backbone("indobenchmark/indobert-base-p1", probe_timeout=0.2)
    assert len(no_network.probes) == 1 and no_network.probes[0][1] == 0.2
    assert_lists_the_ways_out(str(raised.value))


def test_unreachable_hub_falls_back_to_a_warm_cache(no_network: NetworkRecorder) -> None:
    """The same probe failure with the model in the cache loads it from there (local files only)."""
    from huggingface_hub import constants

    from training.backbone import resolve_backbone

    repo = Path(constants.HF_HUB_CACHE) / "models--indobenchmark--indobert-base-p1"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd", "utf-8")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    (repo / "snapshots" / "0123abcd" / "config.json").write_text("{}", "utf-8")
    backbone = resolve_backbone("indobenchmark/indobert-base-p1", probe_timeout=1.0)
    assert backbone.local_files_only and backbone.note == "Hub cache (the Hub is unreachable)"
    assert len(no_network.probes) == 1


def test_hf_hub_offline_without_cache_never_touches_the_network(no_network: NetworkRecorder,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from training.backbone import BackboneUnavailableError, resolve_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="HF_HUB_OFFLINE is set") as raised:
        resolve_backbone("someone/not-cached-model-xyz")
    assert no_network.probes == [] and no_network.lookups == [] and no_network.connects == [], \
        "with HF_HUB_OFFLINE=1 no connection may be attempted"
    assert_lists_the_ways_out(str(raised.value))
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        resolve_backbone(str(tmp_path / "missing" / "dir"))


def test_cli_with_a_refusing_hub_endpoint_exits_with_the_ways_out(tmp_path: Path) -> None:
    """End to end through ``python -m training.train``: the endpoint is a local port that is bound
    but not listening, so every connection is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = python_env(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "cache"))
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("TRANSFORMERS_OFFLINE", None)
        result = subprocess.run(
            [PY, "-m", "training.train", "--model-name-or-path", "indobenchmark/indobert-base-p1",
             "--output-dir", str(tmp_path / "o"), "--data-dir", str(MINI_DATA)],
            capture_output=True, text=True, env=env, timeout=600,
        )
    assert result.returncode == 1, result.stderr[-3000:]
    err = result.stderr
    assert "Cannot load the backbone 'indobenchmark/indobert-base-p1'" in err, err[-3000:]
    assert f"{endpoint} is unreachable" in err
    assert_lists_the_ways_out(err)
    assert "Traceback" not in err, "the failure must be a message, not a traceback"


def test_torchrun_two_processes_on_cpu_writes_one_model(tiny_backbone: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    result = subprocess.run(
        [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port, no clash
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

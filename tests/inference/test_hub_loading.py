"""Loading a model by Hugging Face Hub repo id, without any network access.

Two kinds of Hub are used, both offline:

* a Hub cache folder filled by hand in the layout ``huggingface_hub`` uses
  (``models--org--name/blobs/<etag>``, ``snapshots/<commit>/<file>`` as relative symlinks to the
  blobs, ``refs/<branch>`` holding the commit), from the tiny model trained in this session;
* a local stand-in for the Hub API on 127.0.0.1 (``hub_standin.py``), to check which files a real
  ``snapshot_download`` fetches for each backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MINI_DATA, PY, python_env
from hub_standin import HubStandin, exported_tiny_model, model_files

from inference import Classifier
from inference.hub import HubModelUnavailableError, hub_reachable, is_repo_id

REPO_ID = "netralitas-test/tiny-model"
MAIN = "a" * 40
V1 = "b" * 40
TEXTS = [json.loads(line)["text"] for line in (MINI_DATA / "test.jsonl").read_text("utf-8").splitlines()]
TORCH_FILES = {"config.json", "tokenizer.json", "tokenizer_config.json", "thresholds.json", "taxonomy.yaml",
               "model.safetensors"}
ONNX_FILES = {"config.json", "tokenizer.json", "tokenizer_config.json", "thresholds.json", "taxonomy.yaml",
              "onnx/model.int8.onnx", "onnx/export_report.json"}


@pytest.fixture(scope="module")
def exported(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_tiny_model(trained_model_dir, tmp_path_factory)


def fill_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str, ref: str = "main") -> Path:
    """Write ``files`` as commit ``commit`` of ``repo_id`` into a Hub cache, as ``huggingface_hub``
    does: blobs named by their etag (sha256 for LFS files, the git blob sha1 otherwise), a
    snapshot folder of relative symlinks, and ``refs/<ref>`` holding the commit hash."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for name, content in files.items():
        lfs = name.endswith((".safetensors", ".onnx"))
        etag = (hashlib.sha256(content).hexdigest() if lfs
                else hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest())
        blob = storage / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
    return snapshot


def subset(files: dict[str, bytes], names: set[str]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k in names}


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LOAD = textwrap.dedent("""
    import json, sys
    from inference import Classifier
    specs, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    out = []
    for spec in specs:
        try:
            clf = Classifier.from_pretrained(spec.pop("model"), device="cpu", **spec)
        except FileNotFoundError as exc:
            out.append({"error": type(exc).__name__, "message": str(exc)})
            continue
        out.append({"backend": clf.backend.name, "path": str(clf.info.path),
                    "thresholds": clf.thresholds, "scores": [p.scores for p in clf.predict(texts)]})
    print(json.dumps(out))
""")


def load_in_subprocess(specs: list[dict[str, Any]], **env: str) -> list[dict[str, Any]]:
    """Load each ``{"model": ..., **from_pretrained kwargs}`` in a fresh interpreter whose
    environment (``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``) is set before
    ``huggingface_hub`` is imported, as for a user."""
    result = subprocess.run([PY, "-c", LOAD, json.dumps(specs), json.dumps(TEXTS)], capture_output=True,
                            text=True, env=python_env(**env), timeout=600)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def local_scores(model_dir: Path, **kwargs: Any) -> list[dict[str, float]]:
    return [p.scores for p in Classifier.from_pretrained(model_dir, device="cpu", **kwargs).predict(TEXTS)]


def assert_same_scores(got: list[dict[str, float]], expected: list[dict[str, float]]) -> None:
    assert len(got) == len(expected) == len(TEXTS)
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=1e-6)


@pytest.fixture()
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty Hub cache for in-process tests (``huggingface_hub`` reads ``HF_HUB_CACHE`` at import,
    so its constant is pointed at the folder too)."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    yield cache


@pytest.fixture()
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every ``socket.create_connection`` call (the probe's, and httpx's) made during the test;
    the calls still go through."""
    calls: list[tuple[Any, ...]] = []
    real = socket.create_connection

    def spy(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(tuple(address))
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return calls


# ------------------------------------------------------------------ repo ids vs local paths
def test_what_counts_as_a_repo_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert is_repo_id("org/name") and is_repo_id("indobenchmark/indobert-base-p1")
    (tmp_path / "models" / "mine").mkdir(parents=True)
    assert not is_repo_id("models/mine"), "an existing directory is always local"
    assert not is_repo_id(Path("org/name")), "a Path object is always local"
    for local in ("name", "./org/name", "/org/name", "~/org/name", "a/b/c", "org/../x", "org--x/name"):
        assert not is_repo_id(local), local


def test_hub_modules_import_nothing_heavy() -> None:
    code = ("import sys, inference, inference.hub, inference.publish, inference.cli\n"
            "print(','.join(m for m in ('huggingface_hub', 'torch', 'transformers', 'training') if m in sys.modules))")
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=python_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "huggingface_hub is imported only when a repo id is resolved"


def test_revision_is_refused_for_a_local_directory(trained_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="revision='v1' applies to Hub repo ids"):
        Classifier.from_pretrained(trained_model_dir, revision="v1")


# ------------------------------------------------------------------ warm cache, HF_HUB_OFFLINE=1
def test_repo_id_loads_from_the_cache_offline_with_both_backends(exported: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub-cache"
    snapshot = fill_hub_cache(cache, REPO_ID, model_files(exported), MAIN)
    got = load_in_subprocess(
        [{"model": REPO_ID, "backend": "torch"},
         {"model": REPO_ID, "backend": "onnx"},
         {"model": REPO_ID, "backend": "onnx", "onnx_file": "onnx/model.onnx"},
         {"model": REPO_ID, "backend": "auto"}],
        HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1",
        HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")  # any network attempt would fail
    torch_run, int8_run, fp32_run, auto_run = got
    assert [r["backend"] for r in got] == ["torch", "onnx-int8", "onnx", "onnx-int8"]
    assert {r["path"] for r in got} == {str(snapshot)}
    assert_same_scores(torch_run["scores"], local_scores(exported, backend="torch"))
    assert_same_scores(int8_run["scores"], local_scores(exported, backend="onnx"))
    assert_same_scores(fp32_run["scores"], local_scores(exported, backend="onnx", onnx_file="onnx/model.onnx"))
    assert_same_scores(auto_run["scores"], int8_run["scores"])


def test_offline_auto_uses_what_is_cached_and_names_what_is_missing(exported: Path, tmp_path: Path) -> None:
    files = model_files(exported)
    torch_cache, onnx_cache = tmp_path / "torch-only", tmp_path / "onnx-only"
    fill_hub_cache(torch_cache, REPO_ID, subset(files, TORCH_FILES), MAIN)
    fill_hub_cache(onnx_cache, REPO_ID, subset(files, ONNX_FILES), MAIN)
    from_torch_cache = load_in_subprocess([{"model": REPO_ID, "backend": "auto"},
                                           {"model": REPO_ID, "backend": "onnx"}],
                                          HF_HUB_CACHE=str(torch_cache), HF_HUB_OFFLINE="1")
    from_onnx_cache = load_in_subprocess([{"model": REPO_ID, "backend": "auto"},
                                          {"model": REPO_ID, "backend": "torch"}],
                                         HF_HUB_CACHE=str(onnx_cache), HF_HUB_OFFLINE="1")
    assert from_torch_cache[0]["backend"] == "torch"
    assert from_onnx_cache[0]["backend"] == "onnx-int8"
    for failed, missing in ((from_torch_cache[1], "onnx/model.int8.onnx"), (from_onnx_cache[1], "model.safetensors")):
        assert failed["error"] == "HubModelUnavailableError"
        assert REPO_ID in failed["message"] and missing in failed["message"]
        assert "HF_HUB_OFFLINE=1" in failed["message"]


def test_revision_picks_the_cached_commit_of_a_tag(exported: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub-cache"
    files = subset(model_files(exported), ONNX_FILES)
    fill_hub_cache(cache, REPO_ID, files, MAIN)
    thresholds = json.loads(files["thresholds.json"])
    thresholds["thresholds"] = dict.fromkeys(thresholds["thresholds"], 0.9)
    tagged = fill_hub_cache(cache, REPO_ID, {**files, "thresholds.json": json.dumps(thresholds).encode()}, V1, ref="v1")
    main_run, v1_run = load_in_subprocess([{"model": REPO_ID}, {"model": REPO_ID, "revision": "v1"}],
                                          HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    assert v1_run["path"] == str(tagged) and main_run["path"] != str(tagged)
    assert list(v1_run["thresholds"].values()) == pytest.approx([0.9] * len(v1_run["thresholds"]))
    assert list(main_run["thresholds"].values()) != pytest.approx([0.9] * len(main_run["thresholds"]))


def test_cli_scores_with_a_repo_id_from_the_cache(exported: Path, tmp_path: Path, empty_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    from inference.cli import main

    fill_hub_cache(empty_cache, REPO_ID, subset(model_files(exported), ONNX_FILES), MAIN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src, out = tmp_path / "posts.txt", tmp_path / "scored.csv"
    src.write_text("\n".join(TEXTS) + "\n", "utf-8")
    assert main(["--model-dir", REPO_ID, "--revision", "main", "--input", str(src), "--output", str(out),
                 "--no-progress"]) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = local_scores(exported, backend="onnx")
    assert len(rows) == len(TEXTS)
    for row, scores in zip(rows, expected, strict=True):
        assert {k: float(row[f"score_{k}"]) for k in scores} == pytest.approx(scores, abs=1e-5)


# ------------------------------------------------------------------ cold cache: fail fast, say what to do
def test_offline_with_an_empty_cache_names_the_repo_and_the_ways_out(
        empty_cache: Path, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[Any, ...]]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubModelUnavailableError) as info:
        Classifier.from_pretrained("someone/not-cached-model")
    message = str(info.value)
    assert "'someone/not-cached-model'" in message and "HF_HUB_OFFLINE is set" in message
    assert "check the network" in message and "local model directory" in message
    assert "then set HF_HUB_OFFLINE=1" in message and str(empty_cache) in message
    assert connections == [], "HF_HUB_OFFLINE must never touch the network"


def test_probe_reports_a_closed_port_unreachable_in_one_attempt(
        monkeypatch: pytest.MonkeyPatch, connections: list[tuple[Any, ...]]) -> None:
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert hub_reachable(timeout=5.0) is False
    assert connections == [("127.0.0.1", port)], "one connection attempt, no retry loop"


def test_unreachable_hub_and_empty_cache_fail_at_the_probe(
        empty_cache: Path, monkeypatch: pytest.MonkeyPatch, connections: list[tuple[Any, ...]]) -> None:
    port = closed_port()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(HubModelUnavailableError) as info:
        Classifier.from_pretrained("someone/not-cached-model", backend="onnx")
    message = str(info.value)
    assert f"http://127.0.0.1:{port} is unreachable" in message and "not in the Hugging Face cache" in message
    assert "check the network" in message and "local model directory" in message and "HF_HUB_OFFLINE=1" in message
    assert connections == [("127.0.0.1", port)], "only the probe may try to connect: no HTTP retries"


def test_unreachable_hub_with_a_warm_cache_uses_the_cache(
        exported: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch,
        connections: list[tuple[Any, ...]]) -> None:
    snapshot = fill_hub_cache(empty_cache, REPO_ID, subset(model_files(exported), ONNX_FILES), MAIN)
    port = closed_port()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    clf = Classifier.from_pretrained(REPO_ID, device="cpu")
    assert clf.info is not None and clf.info.path == snapshot and clf.backend.name == "onnx-int8"
    assert connections == [("127.0.0.1", port)]


# ------------------------------------------------------------------ online, against the stand-in Hub
def test_download_fetches_only_the_files_of_the_chosen_backend(exported: Path, tmp_path: Path) -> None:
    files = model_files(exported)
    with HubStandin() as hub:
        commit = hub.commit(REPO_ID, files)
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
        onnx_cache, torch_cache = tmp_path / "onnx-cache", tmp_path / "torch-cache"
        onnx_run, = load_in_subprocess([{"model": REPO_ID, "backend": "onnx"}], HF_HUB_CACHE=str(onnx_cache), **env)
        onnx_downloads = set(hub.downloaded())
        hub.requests.clear()
        auto_run, = load_in_subprocess([{"model": REPO_ID}], HF_HUB_CACHE=str(tmp_path / "auto-cache"), **env)
        auto_downloads = set(hub.downloaded())
        hub.requests.clear()
        torch_run, = load_in_subprocess([{"model": REPO_ID, "backend": "torch"}], HF_HUB_CACHE=str(torch_cache),
                                        **env)
        torch_downloads = set(hub.downloaded())
    assert onnx_downloads == ONNX_FILES, "the ONNX path must not download model.safetensors or the fp32 file"
    assert auto_downloads == ONNX_FILES, "auto on CPU takes the int8 ONNX files when the repo has them"
    assert torch_downloads == TORCH_FILES, "the torch path must not download ONNX files"
    assert onnx_run["backend"] == auto_run["backend"] == "onnx-int8"
    assert torch_run["backend"] == "torch"
    assert onnx_run["path"].endswith(f"models--{REPO_ID.replace('/', '--')}/snapshots/{commit}")
    assert_same_scores(onnx_run["scores"], local_scores(exported, backend="onnx"))
    assert_same_scores(torch_run["scores"], local_scores(exported, backend="torch"))
    # Downloaded once, the cache serves HF_HUB_OFFLINE=1 (the stand-in is gone now).
    offline = load_in_subprocess([{"model": REPO_ID}, {"model": REPO_ID, "backend": "torch"}],
                                 HF_HUB_CACHE=str(onnx_cache), HF_HUB_OFFLINE="1")
    assert offline[0]["backend"] == "onnx-int8"
    assert offline[1]["error"] == "HubModelUnavailableError" and "model.safetensors" in offline[1]["message"]


def test_a_repo_without_the_backend_files_says_so(trained_model_dir: Path, tmp_path: Path) -> None:
    with HubStandin() as hub:
        hub.commit(REPO_ID, model_files(trained_model_dir))  # trained, never exported
        onnx_run, missing_repo = load_in_subprocess(
            [{"model": REPO_ID, "backend": "onnx"}, {"model": "netralitas-test/no-such-model"}],
            HF_HUB_CACHE=str(tmp_path / "cache"), HF_ENDPOINT=hub.url)
        assert hub.downloaded() == []
    assert onnx_run["error"] == "HubModelUnavailableError"
    assert "onnx/model.int8.onnx" in onnx_run["message"] and "python -m inference.export" in onnx_run["message"]
    assert missing_repo["error"] == "HubModelUnavailableError"
    assert "neither a local directory nor a model repo" in missing_repo["message"]

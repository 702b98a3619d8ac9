"""Publishing a model directory to the Hugging Face Hub, without any network access.

Two things are checked:

* the exact upload plan (:func:`inference.publish.plan_upload`, printed by ``--dry-run``): which
  files of a directory are committed, with which sizes, into which repo, and the model card as
  published -- no network at all;
* real uploads by ``huggingface_hub`` (``python -m inference.publish`` and ``python -m
  training.train --push-to-hub``) against a local stand-in for the Hub API on 127.0.0.1
  (``hub_standin.py``; ``HF_HUB_DISABLE_XET=1`` so that large files go through the LFS protocol
  the stand-in speaks). The stand-in stores every committed byte, so the tests compare the repo
  with the directory, then load the published model back by repo id.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import MINI_DATA, PY, REPO, TINY_TRAIN_FLAGS
from hub_standin import HubStandin, exported_tiny_model, model_files

from inference import Classifier
from inference.publish import IGNORE_PATTERNS, hub_model_card, main, plan_upload

REPO_ID = "netralitas-test/published"
TOKEN = "hf_standin_write_token"
TEXTS = [json.loads(line)["text"] for line in (MINI_DATA / "test.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture()
def exported_copy(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the tiny model with its ONNX export."""
    target = tmp_path / "model"
    shutil.copytree(exported_tiny_model(trained_model_dir, tmp_path_factory), target)
    return target


def hub_env(tmp_path: Path, hub: HubStandin | None = None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    """A subprocess environment with this repository importable, an empty HF_HOME (no saved
    token) and, unless ``token`` is None, ``HF_TOKEN``."""
    env = {k: v for k, v in os.environ.items() if k not in {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"}}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    if token is not None:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def run_module(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", *args], capture_output=True, text=True, env=env, timeout=900)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    return dict(yaml.safe_load(card.split("---\n")[1]))


# ------------------------------------------------------------------ the plan (no network)
def test_plan_is_every_file_but_checkpoints_hidden_temporaries_and_pickles(exported_copy: Path) -> None:
    expected = model_files(exported_copy)
    assert {"model.safetensors", "onnx/model.onnx", "onnx/model.int8.onnx", "onnx/export_report.json",
            "README.md", "metrics.json"} <= set(expected)
    junk = ["checkpoint-12/model.safetensors", "checkpoint-12/trainer_state.json", ".README.md.abc.tmp",
            "onnx/.export-1234/model.onnx", "training_args.bin", "notes.pkl", "scores.tmp"]
    for name in junk:
        (exported_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (exported_copy / name).write_bytes(b"not for the Hub")
    plan = plan_upload(exported_copy, REPO_ID, private=True)
    assert plan.repo_id == REPO_ID and plan.private is True and plan.revision is None
    assert plan.paths == sorted(expected)
    assert {f.path_in_repo: f.size for f in plan.files} == {k: len(v) for k, v in expected.items()}
    assert sorted(path for path, _ in plan.skipped) == sorted(junk)
    assert all(why.removeprefix("matches ") in IGNORE_PATTERNS for _, why in plan.skipped)
    card = plan.card.decode("utf-8")
    assert "base_model" not in front_matter(card), "a local backbone path is not a Hub model id"
    assert f'Classifier.from_pretrained("{REPO_ID}")' in card
    assert str(exported_copy) not in card
    local_card = (exported_copy / "README.md").read_text("utf-8")
    assert front_matter(local_card)["base_model"], "the local card is left as it is"
    assert front_matter(card) == {k: v for k, v in front_matter(local_card).items() if k != "base_model"}


def test_model_card_for_the_hub() -> None:
    card = ("---\nlanguage: id\nbase_model: {}\ntags:\n- x\n---\n\n# m\n```python\n"
            'clf = Classifier.from_pretrained("models/m")\n```\n')
    for base, expected in (("offline-me5-small", "intfloat/multilingual-e5-small"),
                           ("offline-minilm", "sentence-transformers/all-MiniLM-L6-v2"),
                           ("indobenchmark/indobert-base-p1", "indobenchmark/indobert-base-p1"),
                           ("/data/backbones/indobert", None), ("?", None)):
        text, changes = hub_model_card(card.format(base), "org/name")
        assert front_matter(text).get("base_model") == expected, base
        assert front_matter(text)["tags"] == ["x"] and 'from_pretrained("org/name")' in text
        assert len(changes) == (1 if base == "indobenchmark/indobert-base-p1" else 2)
    with pytest.raises(ValueError, match="no YAML front matter"):
        hub_model_card("# a card without metadata\n", "org/name")


def test_dry_run_prints_the_plan_and_touches_no_network(exported_copy: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    assert main(["--model-dir", str(exported_copy), "--repo-id", REPO_ID, "--private", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"/{REPO_ID} (revision main; private if created now)" in out
    for name in model_files(exported_copy):
        assert f"  {name} " in out
    assert "dry run: nothing uploaded" in out and attempts == []


def test_directories_that_cannot_be_published(model_copy: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (model_copy / "README.md").unlink()
    assert main(["--model-dir", str(model_copy), "--repo-id", REPO_ID, "--dry-run"]) == 1
    assert "README.md is missing" in capsys.readouterr().err
    (model_copy / "model.safetensors").unlink()
    assert main(["--model-dir", str(model_copy), "--repo-id", REPO_ID, "--dry-run"]) == 1
    assert "missing: model.safetensors" in capsys.readouterr().err
    assert main(["--model-dir", str(tmp_path / "nowhere"), "--repo-id", REPO_ID, "--dry-run"]) == 1
    assert main(["--model-dir", str(model_copy), "--repo-id", "not a repo id", "--dry-run"]) == 2


# ------------------------------------------------------------------ real uploads to the stand-in
def test_publish_commits_the_directory_then_it_loads_by_repo_id(exported_copy: Path, tmp_path: Path) -> None:
    plan = plan_upload(exported_copy, REPO_ID)
    with HubStandin() as hub:
        result = run_module(["inference.publish", "--model-dir", str(exported_copy), "--repo-id", REPO_ID,
                             "--private", "--commit-message", "first model"], hub_env(tmp_path, hub))
        assert result.returncode == 0, result.stderr
        repo = hub.repos[REPO_ID]
        committed = repo.files("main")
        authorizations = {r.authorization for r in hub.requests if r.path.startswith("/api/")
                          and r.path != "/api/agent-harnesses"}
        uploaded_lfs = set(hub.lfs)
        load = textwrap.dedent(f"""
            import json
            from inference import Classifier
            clf = Classifier.from_pretrained({REPO_ID!r}, backend="onnx", device="cpu")
            print(json.dumps({{"backend": clf.backend.name, "scores": [p.scores for p in clf.predict({TEXTS!r})]}}))
        """)
        loaded = subprocess.run([PY, "-c", load], capture_output=True, text=True, timeout=600,
                                env=hub_env(tmp_path, hub, HF_HUB_CACHE=str(tmp_path / "cache")))
    assert "published: " in result.stdout and REPO_ID in result.stdout
    assert repo.private is True
    assert authorizations == {f"Bearer {TOKEN}"}, "the token comes from HF_TOKEN, as huggingface_hub does"
    assert repo.messages[repo.branches["main"]] == "first model"
    expected = model_files(exported_copy)
    assert set(committed) == {*expected, ".gitattributes"}
    for name, content in expected.items():
        assert committed[name] == (plan.card if name == "README.md" else content), name
    assert {"model.safetensors", "onnx/model.onnx", "onnx/model.int8.onnx"} <= {
        name for name, content in committed.items() if content in hub.lfs.values()}
    assert len(uploaded_lfs) == 3
    assert loaded.returncode == 0, loaded.stderr
    out = json.loads(loaded.stdout.strip().splitlines()[-1])
    local = Classifier.from_pretrained(exported_copy, backend="onnx", device="cpu").predict(TEXTS)
    assert out["backend"] == "onnx-int8"
    for got, want in zip(out["scores"], local, strict=True):
        assert got == pytest.approx(want.scores, abs=1e-6)


def test_publishing_again_makes_the_repo_mirror_the_directory(exported_copy: Path, tmp_path: Path) -> None:
    with HubStandin() as hub:
        env = hub_env(tmp_path, hub)
        first = run_module(["inference.publish", "--model-dir", str(exported_copy), "--repo-id", REPO_ID], env)
        assert first.returncode == 0, first.stderr
        hub.commit(REPO_ID, {**hub.repos[REPO_ID].files("main"), "old-notes.txt": b"stale"}, "someone else")
        shutil.rmtree(exported_copy / "onnx")  # e.g. retrained: the old export is gone
        second = run_module(["inference.publish", "--model-dir", str(exported_copy), "--repo-id", REPO_ID,
                             "--revision", "retrained"], env)
        assert second.returncode == 0, second.stderr
        repo = hub.repos[REPO_ID]
    assert "onnx/model.int8.onnx" in repo.files("main"), "another branch leaves main alone"
    assert set(repo.files("retrained")) == {*model_files(exported_copy), ".gitattributes"}
    assert repo.private is None, "without --private the Hub's default visibility applies"


def test_no_token_or_no_hub_fails_before_anything_is_uploaded(exported_copy: Path, tmp_path: Path) -> None:
    args = ["inference.publish", "--model-dir", str(exported_copy), "--repo-id", REPO_ID]
    with HubStandin() as hub:
        no_token = run_module(args, hub_env(tmp_path, hub, token=None))
        assert hub.repos == {}
    unreachable = run_module(args, hub_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}"))
    assert no_token.returncode == unreachable.returncode == 3
    assert "no Hugging Face token" in no_token.stderr and "hf auth login" in no_token.stderr
    assert "unreachable" in unreachable.stderr and "nothing was uploaded" in unreachable.stderr


# ------------------------------------------------------------------ training --push-to-hub
def test_push_to_hub_flags_are_validated_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.publish import PushRequest
    from training.train import parse_args

    def training_args(*flags: str) -> Any:
        return parse_args(["--output-dir", str(tmp_path / "out"), *flags])[3]

    assert PushRequest.take_from(training_args()) is None
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubStandin() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        args = training_args("--push-to-hub", "--hub-model-id", REPO_ID, "--hub-private-repo", "true",
                             "--hub-revision", "v2")
        request = PushRequest.take_from(args)
        assert hub.requests == [], "the check only probes the endpoint; nothing is created before training"
    assert request is not None and (request.repo_id, request.private, request.revision) == (REPO_ID, True, "v2")
    assert args.push_to_hub is False, "the Trainer itself must never push"
    with pytest.raises(SystemExit, match="--push-to-hub needs --hub-model-id"):
        PushRequest.take_from(training_args("--push-to-hub"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(SystemExit, match="unreachable; drop --push-to-hub and publish later"):
        PushRequest.take_from(training_args("--push-to-hub", "--hub-model-id", REPO_ID))


def test_training_with_push_to_hub_publishes_the_final_directory_once(tiny_backbone: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    with HubStandin() as hub:
        result = run_module(["training.train", "--model-name-or-path", str(tiny_backbone), "--output-dir", str(out),
                             *TINY_TRAIN_FLAGS, "--num-train-epochs", "3", "--push-to-hub", "--hub-model-id",
                             REPO_ID, "--hub-private-repo", "true"], hub_env(tmp_path, hub))
        assert result.returncode == 0, result.stderr[-3000:]
        repo = hub.repos[REPO_ID]
    assert len(repo.commits) == 2, "one commit by the Hub when the repo was created, one by us: no checkpoint pushes"
    assert repo.private is True
    committed = repo.files("main")
    assert set(committed) == {*model_files(out), ".gitattributes"}
    assert committed["model.safetensors"] == (out / "model.safetensors").read_bytes()
    assert "base_model" not in front_matter(committed["README.md"].decode("utf-8"))
    assert f"published {out} -> " in result.stdout

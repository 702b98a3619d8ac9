"""Publish a trained (and optionally exported) model directory to the Hugging Face Hub.

    python -m inference.publish --model-dir models/indobert-base --repo-id my-org/netralitas-asn-indobert
    python -m inference.publish --model-dir models/indobert-base --repo-id my-org/netralitas-asn-indobert --dry-run

Nothing is uploaded unless this command runs (or ``python -m training.train --push-to-hub
--hub-model-id org/name``, which calls it once, after training).

**What is uploaded:** every file of the directory -- weights, tokenizer, ``config.json``,
``thresholds.json``, ``taxonomy.yaml``, ``metrics.json``, the model card ``README.md`` and the
``onnx/`` export -- except ``checkpoint-*`` folders, hidden and temporary files, and pickle files
(``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``, ``*.pickle``). One commit makes the repo hold exactly
these files: files of an earlier upload that the directory no longer has (a stale ONNX export of
older weights, say) are deleted in the same commit (``.gitattributes`` is kept).

**The model card** is uploaded with two changes for the Hub (the local ``README.md`` is left as
it is): the usage snippet loads the repo id instead of the local path, and ``base_model`` names a
Hub model (an offline preset becomes the model it was built from; a local path, which the Hub
rejects, is dropped).

**Access:** the token is ``huggingface_hub``'s default (``HF_TOKEN``, else the one saved by ``hf
auth login``); it needs write access. ``--private`` creates the repo private (an existing repo
keeps its visibility). ``--revision`` commits to that branch, creating it if needed.

Exit codes: 0 published (or planned, with ``--dry-run``); 1 the directory cannot be published
(missing or incomplete, no model card); 2 usage error; 3 no token, the Hub cannot be reached, or
it refused the upload.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.hub import DEFAULT_PROBE_TIMEOUT, REPO_ID_PATTERN, hub_endpoint, hub_reachable
from inference.modeldir import ONNX_DIR, WEIGHTS_FILE, check_model_dir, read_model_info

EXIT_OK, EXIT_DIR, EXIT_USAGE, EXIT_HUB = 0, 1, 2, 3
CARD_FILE = "README.md"
#: files of a model directory that are never uploaded (fnmatch patterns on the relative path)
IGNORE_PATTERNS = (
    "checkpoint-*",                   # Trainer checkpoints (kept only with --keep-checkpoints)
    ".*", "*/.*",                     # hidden files: atomic-write temporaries, .cache/, .git/
    "*.tmp", "*.lock",
    "*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle",  # pickles: the directory is safetensors-only
)
#: the Hub model each offline preset was built from (training.backbone)
PRESET_BASE_MODELS = {
    "offline-me5-small": "intfloat/multilingual-e5-small",
    "offline-minilm": "sentence-transformers/all-MiniLM-L6-v2",
}
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.S)
_USAGE = re.compile(r'Classifier\.from_pretrained\("[^"\n]*"\)')


class PublishError(RuntimeError):
    """The directory cannot be published, or the Hub cannot be reached or refused the upload."""


@dataclass(frozen=True)
class PlannedFile:
    """One file of the commit: its path in the repo, size in bytes and local source."""

    path_in_repo: str
    size: int
    local_path: Path


@dataclass
class UploadPlan:
    """Exactly what :func:`publish` commits: ``files`` (``README.md`` as ``card``), into ``repo_id``."""

    repo_id: str
    model_dir: Path
    files: list[PlannedFile]
    skipped: list[tuple[str, str]]
    card: bytes
    card_changes: list[str]
    private: bool | None = None
    revision: str | None = None
    commit_message: str = "Upload model"
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """Paths in the repo, sorted."""
        return [f.path_in_repo for f in self.files]

    @property
    def total_bytes(self) -> int:
        """Bytes uploaded (the card as adjusted)."""
        return sum(len(self.card) if f.path_in_repo == CARD_FILE else f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description of the plan."""
        return {
            "repo_id": self.repo_id,
            "revision": self.revision or "main",
            "private": self.private,
            "commit_message": self.commit_message,
            "files": {f.path_in_repo: (len(self.card) if f.path_in_repo == CARD_FILE else f.size)
                      for f in self.files},
            "skipped": dict(self.skipped),
            "card_changes": self.card_changes,
            "deletes": "remote files not listed in 'files' (except .gitattributes)",
            "notes": self.notes,
        }

    def describe(self) -> str:
        """The plan as text: repo, files with sizes, what is skipped and why."""
        visibility = {None: "new repo: the account's default visibility; existing repo: unchanged",
                      True: "private if created now", False: "public if created now"}[self.private]
        lines = [f"repo: {hub_endpoint()}/{self.repo_id} (revision {self.revision or 'main'}; {visibility})",
                 f"from: {self.model_dir}",
                 f"upload {len(self.files)} files, {_size(self.total_bytes)}:"]
        for f in self.files:
            size = len(self.card) if f.path_in_repo == CARD_FILE else f.size
            lines.append(f"  {f.path_in_repo:<40} {_size(size):>10}")
        lines.append("delete: remote files not listed above (except .gitattributes)")
        lines += [f"skip: {path} ({why})" for path, why in self.skipped]
        lines += [f"model card: {change}" for change in self.card_changes]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def _ignored_by(relpath: str) -> str | None:
    return next((p for p in IGNORE_PATTERNS if fnmatch.fnmatch(relpath, p)), None)


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it is shaped ``org/name`` as the Hub requires, else raise ``ValueError``."""
    if not REPO_ID_PATTERN.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(f"invalid Hub repo id {repo_id!r}: expected 'org/name' (letters, digits, '-', '_', '.')")
    return repo_id


def hub_model_card(text: str, repo_id: str, model_dir: Path | None = None) -> tuple[str, list[str]]:
    """The model card as published: ``base_model`` a Hub id or absent, usage snippet on ``repo_id``.

    Returns the card and a list of the changes made. Raises ``ValueError`` when the card has no
    YAML front matter or the front matter is not a YAML mapping.
    """
    import yaml

    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError("the model card has no YAML front matter (--- ... --- at the top)")
    header = match.group(1)
    changes: list[str] = []
    base = re.search(r"^base_model:[ \t]*(.*)\n", header, re.M)
    if base is not None:
        value = base.group(1).strip().strip("'\"")
        local = Path(value).expanduser()
        if value in PRESET_BASE_MODELS:
            new = f"base_model: {PRESET_BASE_MODELS[value]}\n"
            changes.append(f"base_model {value} -> {PRESET_BASE_MODELS[value]} (the model the preset is built from)")
        elif (not REPO_ID_PATTERN.match(value) or local.exists()
              or (model_dir is not None and (model_dir / value).exists())):
            new = ""
            changes.append(f"base_model {value!r} dropped (a local path, not a Hub model id)")
        else:
            new = base.group(0)
        header = header[:base.start()] + new + header[base.end():]
    try:
        meta = yaml.safe_load(header)
    except yaml.YAMLError as exc:
        raise ValueError(f"the model card's YAML front matter does not parse: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError("the model card's YAML front matter is not a mapping")
    body, count = _USAGE.subn(f'Classifier.from_pretrained("{repo_id}")', text[match.end():])
    if count:
        changes.append(f'usage snippet loads Classifier.from_pretrained("{repo_id}")')
    return f"---\n{header}---\n{body}", changes


def plan_upload(
    model_dir: str | Path,
    repo_id: str,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> UploadPlan:
    """Check a model directory and list exactly what :func:`publish` would commit. No network.

    Raises ``FileNotFoundError`` for a missing or incomplete directory (naming the files) and
    ``ValueError`` for an invalid repo id, a card without front matter or an inconsistent directory.
    """
    check_repo_id(repo_id)
    path = check_model_dir(model_dir, need=(WEIGHTS_FILE,))
    info = read_model_info(path)  # config, taxonomy and thresholds agree
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path} is missing: a model is published with its model card "
                                "(python -m training.train writes it)")
    card, changes = hub_model_card(card_path.read_text(encoding="utf-8"), repo_id, path)
    files: list[PlannedFile] = []
    skipped: list[tuple[str, str]] = []
    for local in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = local.relative_to(path).as_posix()
        pattern = _ignored_by(rel)
        if pattern is not None:
            skipped.append((rel, f"matches {pattern}"))
        else:
            files.append(PlannedFile(rel, local.stat().st_size, local))
    notes = []
    if not any(f.path_in_repo.startswith(f"{ONNX_DIR}/") for f in files):
        notes.append(f"no ONNX export in {path}: `python -m inference.export --model-dir {path} --quantize "
                     "int8`, then publish again, lets CPU users load it without torch")
    if info.config.get("offline_standin"):
        notes.append("this model uses an offline stand-in backbone (its model card says so): "
                     "publish it for pipeline checks, not for deployment")
    message = commit_message or f"Upload {info.model_type or 'model'} classifier (taxonomy {info.taxonomy.version})"
    return UploadPlan(repo_id, path, files, skipped, card.encode("utf-8"), changes, private, revision,
                      message, notes)


def publish(plan: UploadPlan, token: str | None = None,
            probe_timeout: float = DEFAULT_PROBE_TIMEOUT) -> str:
    """Create the repo if needed and commit ``plan`` in one commit; returns the commit URL.

    ``token`` defaults to ``huggingface_hub``'s (``HF_TOKEN`` or ``hf auth login``). Raises
    :class:`PublishError` without a token, when the Hub does not answer within
    ``probe_timeout`` seconds, or when it refuses a request.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token

    if token is None and get_token() is None:
        raise PublishError("no Hugging Face token: set HF_TOKEN to a token with write access or run "
                           "`hf auth login`; nothing was uploaded")
    if not hub_reachable(probe_timeout):
        raise PublishError(f"the Hub at {hub_endpoint()} is unreachable (no connection within "
                           f"{probe_timeout:g} s); nothing was uploaded. Publish later with `python -m "
                           f"inference.publish --model-dir {plan.model_dir} --repo-id {plan.repo_id}`")
    api = HfApi(token=token)
    try:
        api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
        if plan.revision and plan.revision != "main":
            api.create_branch(plan.repo_id, branch=plan.revision, exist_ok=True)
        remote = api.list_repo_files(plan.repo_id, revision=plan.revision)
        keep = set(plan.paths)
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=f.path_in_repo,
                               path_or_fileobj=plan.card if f.path_in_repo == CARD_FILE else str(f.local_path))
            for f in plan.files
        ]
        operations += [CommitOperationDelete(path_in_repo=p) for p in sorted(remote)
                       if p not in keep and p != ".gitattributes"]
        info = api.create_commit(plan.repo_id, operations, commit_message=plan.commit_message,
                                 revision=plan.revision)
    except Exception as exc:  # HfHubHTTPError, connection errors: say what failed, keep the cause
        raise PublishError(
            f"publishing {plan.model_dir} to {plan.repo_id} failed: {type(exc).__name__}: {exc}") from exc
    return str(info.commit_url)


@dataclass(frozen=True)
class PushRequest:
    """``--push-to-hub`` of ``python -m training.train``, taken out of ``TrainingArguments`` so that
    the Trainer never pushes checkpoints; the final directory is published once, at the end."""

    repo_id: str
    private: bool | None
    revision: str | None
    token: str | None

    @classmethod
    def take_from(cls, training_args: Any, probe_timeout: float = DEFAULT_PROBE_TIMEOUT) -> PushRequest | None:
        """Return the request (``None`` without ``--push-to-hub``) and set ``push_to_hub=False``.

        Checked before training, so a run does not fail after hours: raises ``SystemExit`` with the
        reason when ``--hub-model-id`` is missing or invalid, and, on the main process, when no
        token is set or the Hub is unreachable.
        """
        if not getattr(training_args, "push_to_hub", False):
            return None
        training_args.push_to_hub = False
        repo_id = training_args.hub_model_id
        if not repo_id:
            raise SystemExit("error: --push-to-hub needs --hub-model-id org/name")
        try:
            check_repo_id(repo_id)
        except ValueError as exc:
            raise SystemExit(f"error: --hub-model-id: {exc}") from exc
        request = cls(repo_id, training_args.hub_private_repo, training_args.hub_revision, training_args.hub_token)
        if getattr(training_args, "process_index", 0) == 0:
            from huggingface_hub import get_token

            if request.token is None and get_token() is None:
                raise SystemExit("error: --push-to-hub: no Hugging Face token; set HF_TOKEN or run `hf auth "
                                 "login` (or drop --push-to-hub and publish later with python -m inference.publish)")
            if not hub_reachable(probe_timeout):
                raise SystemExit(f"error: --push-to-hub: the Hub at {hub_endpoint()} is unreachable; drop "
                                 "--push-to-hub and publish later with python -m inference.publish")
        return request

    def publish(self, model_dir: str | Path) -> str:
        """Publish the trained directory; raises ``SystemExit`` naming the command to retry with."""
        try:
            plan = plan_upload(model_dir, self.repo_id, self.private, self.revision)
            print(plan.describe(), flush=True)
            url = publish(plan, token=self.token)
        except (PublishError, FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"error: the model is in {model_dir}, but publishing failed: {exc}\nRetry with "
                             f"python -m inference.publish --model-dir {model_dir} --repo-id {self.repo_id}") from exc
        print(f"published {model_dir} -> {url}", flush=True)
        return url


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m inference.publish`` command line."""
    parser = argparse.ArgumentParser(prog="python -m inference.publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="trained (and exported) model directory")
    parser.add_argument("--repo-id", required=True, help="Hub repo to create or update: org/name")
    parser.add_argument("--private", action="store_true", default=None,
                        help="create the repo private (default: the account's default; an existing repo is unchanged)")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if needed; default: main)")
    parser.add_argument("--commit-message", default=None, help="commit message")
    parser.add_argument("--dry-run", action="store_true", help="print the upload plan and upload nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference.publish``."""
    args = build_parser().parse_args(argv)
    try:
        check_repo_id(args.repo_id)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        plan = plan_upload(args.model_dir, args.repo_id, args.private, args.revision, args.commit_message)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DIR
    print(plan.describe())
    if args.dry_run:
        print("dry run: nothing uploaded")
        return EXIT_OK
    try:
        url = publish(plan)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_HUB
    print(f"published: {url}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

"""The dataset's version and change history, kept in ``manifest.json`` beside the split files.

``data/dataset/manifest.json`` holds the current ``dataset_version`` (semantic: a merged batch
of new examples bumps the minor number, label corrections bump the patch number), the SHA-256
of the three split files at that version, and one history entry per change (what changed, when,
by whom, which ids). ``python -m training.merge`` writes it; ``training.train`` records
:func:`describe_version` in ``metrics.json`` and the model card, so every model names the data it
was trained on. When the split files no longer match the recorded hash (edited by hand), the
version reads ``X.Y.Z+modified``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from inference.modeldir import atomic_write_text

MANIFEST_FILE = "manifest.json"
SPLIT_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl")
INITIAL_VERSION = "1.0.0"


def content_sha256(data_dir: str | Path) -> str:
    """SHA-256 over the bytes of the split files that exist, in train/validation/test order."""
    digest = hashlib.sha256()
    for name in SPLIT_FILES:
        path = Path(data_dir) / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def read_manifest(data_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of ``data_dir``, or ``None`` when there is none."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or "dataset_version" not in manifest:
        raise ValueError(f"{path}: not a dataset manifest (no 'dataset_version')")
    return manifest


def dataset_version(data_dir: str | Path) -> dict[str, Any]:
    """``{"version", "content_sha256", "modified"}`` of the data in ``data_dir``.

    ``version`` is ``None`` without a manifest; ``modified`` is true when the split files differ
    from the ones the manifest's version describes.
    """
    manifest = read_manifest(data_dir)
    current = content_sha256(data_dir)
    if manifest is None:
        return {"version": None, "content_sha256": current, "modified": False}
    return {"version": manifest["dataset_version"], "content_sha256": current,
            "modified": manifest.get("content_sha256") != current}


def describe_version(data_dir: str | Path) -> str:
    """One line for run metadata and model cards, e.g. ``1.0.1 (content sha256 3f2a9c0d1b7e)``."""
    info = dataset_version(data_dir)
    short = info["content_sha256"][:12]
    if info["version"] is None:
        return f"unversioned (content sha256 {short})"
    suffix = "+modified" if info["modified"] else ""
    return f"{info['version']}{suffix} (content sha256 {short})"


def _bumped(version: str, part: str) -> str:
    major, minor, patch = (int(x) for x in version.split("+")[0].split("."))
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValueError(f"part must be major, minor or patch, got {part!r}")


def today() -> str:
    """Today's date (UTC) as ``YYYY-MM-DD``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def start_manifest(data_dir: str | Path, change: str, date: str | None = None) -> dict[str, Any]:
    """The manifest of ``data_dir`` as it is, creating version 1.0.0 for the current files when
    there is none (not written; :func:`record_change` writes)."""
    manifest = read_manifest(data_dir)
    if manifest is not None:
        return manifest
    sha = content_sha256(data_dir)
    return {"dataset_version": INITIAL_VERSION, "content_sha256": sha,
            "history": [{"version": INITIAL_VERSION, "date": date or today(), "change": change,
                         "content_sha256": sha}]}


def record_change(data_dir: str | Path, manifest: dict[str, Any], part: str, entry: dict[str, Any]) -> str:
    """Bump the version by ``part``, stamp the current split files' hash, append ``entry`` to
    the history and write the manifest. Call it after the split files are written. Returns the
    new version."""
    version = _bumped(manifest["dataset_version"], part)
    sha = content_sha256(data_dir)
    manifest = dict(manifest)
    manifest["dataset_version"] = version
    manifest["content_sha256"] = sha
    manifest["history"] = [*manifest.get("history", []),
                           {"version": version, "date": entry.pop("date", None) or today(), **entry,
                            "content_sha256": sha}]
    atomic_write_text(Path(data_dir) / MANIFEST_FILE, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    return version

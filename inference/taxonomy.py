"""Load and validate the label taxonomy (``taxonomy.yaml``).

The taxonomy is the single source of truth for the label names and their order. The
repository keeps it in ``data/taxonomy.yaml``; every trained model directory carries a copy,
so inference only ever needs the model directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TAXONOMY_FILENAME = "taxonomy.yaml"
#: Where the repository keeps the taxonomy (absent in a wheel install without the repo).
REPO_TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / TAXONOMY_FILENAME

_TOP_LEVEL_REQUIRED = {"taxonomy_version", "negative_label", "labels"}
_TOP_LEVEL_OPTIONAL = {"negative_title", "negative_definition"}
_LABEL_REQUIRED = {"name", "title", "gloss", "definition", "legal_basis", "cues", "hardest_negatives"}
_LEGAL_BASIS_KEYS = ("skb_2022", "pp_94_2021", "uu_7_2017", "uu_10_2016", "uu_20_2023", "other")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class TaxonomyError(ValueError):
    """Raised when a taxonomy file is missing fields, has unknown keys or duplicate names."""


@dataclass(frozen=True)
class LabelInfo:
    """One violation category with its documentation."""

    name: str
    title: str
    gloss: str
    definition: str
    legal_basis: dict[str, list[str]]
    cues: list[str]
    hardest_negatives: list[str]

    def legal_basis_summary(self) -> str:
        """Return the legal basis as one human-readable line (for tables and model cards)."""
        names = {
            "skb_2022": "SKB 2022",
            "pp_94_2021": "PP 94/2021 Ps. 5(n)",
            "uu_7_2017": "UU 7/2017",
            "uu_10_2016": "UU 10/2016",
            "uu_20_2023": "UU 20/2023",
            "other": "",
        }
        parts = []
        for key, items in self.legal_basis.items():
            if items:
                prefix = names[key]
                joined = ", ".join(items)
                parts.append(f"{prefix} {joined}".strip())
        return "; ".join(parts)


@dataclass(frozen=True)
class Taxonomy:
    """The ordered label set plus the name of the no-violation outcome."""

    version: str
    labels: tuple[LabelInfo, ...]
    negative_label: str
    negative_title: str = ""
    negative_definition: str = ""
    source: str = field(default="", compare=False)

    @property
    def names(self) -> list[str]:
        """Label names in taxonomy order (the order of model outputs)."""
        return [label.name for label in self.labels]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, name: str) -> LabelInfo:
        """Return the label called ``name`` or raise ``KeyError`` listing the valid names."""
        for label in self.labels:
            if label.name == name:
                return label
        raise KeyError(f"unknown label {name!r}; valid labels: {', '.join(self.names)}")


def _fail(source: str, message: str) -> TaxonomyError:
    return TaxonomyError(f"{source}: {message}")


def _require_str_list(value: Any, where: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, f"{where} must be a list of non-empty strings, got {value!r}")
    return list(value)


def _parse_label(raw: Any, index: int, source: str) -> LabelInfo:
    if not isinstance(raw, dict):
        raise _fail(source, f"labels[{index}] must be a mapping, got {type(raw).__name__}")
    where = f"labels[{index}] ({raw.get('name', '?')})"
    unknown = set(raw) - _LABEL_REQUIRED
    if unknown:
        raise _fail(source, f"{where} has unknown key(s): {', '.join(sorted(unknown))}")
    missing = _LABEL_REQUIRED - set(raw)
    if missing:
        raise _fail(source, f"{where} is missing key(s): {', '.join(sorted(missing))}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _fail(source, f"{where} name must be lower_snake_case, got {name!r}")
    for key in ("title", "gloss", "definition"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _fail(source, f"{where} {key} must be a non-empty string")
    basis = raw["legal_basis"]
    if not isinstance(basis, dict):
        raise _fail(source, f"{where} legal_basis must be a mapping")
    unknown_basis = set(basis) - set(_LEGAL_BASIS_KEYS)
    if unknown_basis:
        raise _fail(
            source,
            f"{where} legal_basis has unknown key(s): {', '.join(sorted(unknown_basis))}; "
            f"allowed: {', '.join(_LEGAL_BASIS_KEYS)}",
        )
    legal_basis = {}
    for key in _LEGAL_BASIS_KEYS:
        items = basis.get(key) or []
        if items:
            _require_str_list(items, f"{where} legal_basis.{key}", source)
        legal_basis[key] = list(items)
    if not any(legal_basis.values()):
        raise _fail(source, f"{where} legal_basis is empty")
    return LabelInfo(
        name=name,
        title=raw["title"].strip(),
        gloss=raw["gloss"].strip(),
        definition=" ".join(raw["definition"].split()),
        legal_basis=legal_basis,
        cues=_require_str_list(raw["cues"], f"{where} cues", source),
        hardest_negatives=_require_str_list(
            raw["hardest_negatives"], f"{where} hardest_negatives", source
        ),
    )


def parse_taxonomy(raw: Any, source: str = "<taxonomy>") -> Taxonomy:
    """Validate an already-parsed YAML document and build a :class:`Taxonomy`.

    Raises :class:`TaxonomyError` naming the problem (unknown or missing keys, duplicate or
    malformed names, empty fields).
    """
    if not isinstance(raw, dict):
        raise _fail(source, "the taxonomy must be a YAML mapping at the top level")
    unknown = set(raw) - _TOP_LEVEL_REQUIRED - _TOP_LEVEL_OPTIONAL
    if unknown:
        raise _fail(source, f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    missing = _TOP_LEVEL_REQUIRED - set(raw)
    if missing:
        raise _fail(source, f"missing top-level key(s): {', '.join(sorted(missing))}")
    version = raw["taxonomy_version"]
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        raise _fail(source, f"taxonomy_version must be a 'MAJOR.MINOR.PATCH' string, got {version!r}")
    labels_raw = raw["labels"]
    if not isinstance(labels_raw, list) or not labels_raw:
        raise _fail(source, "labels must be a non-empty list")
    labels = tuple(_parse_label(item, i, source) for i, item in enumerate(labels_raw))
    seen: set[str] = set()
    for label in labels:
        if label.name in seen:
            raise _fail(source, f"duplicate label name {label.name!r}")
        seen.add(label.name)
    negative = raw["negative_label"]
    if not isinstance(negative, str) or not _NAME_RE.match(negative):
        raise _fail(source, f"negative_label must be lower_snake_case, got {negative!r}")
    if negative in seen:
        raise _fail(source, f"negative_label {negative!r} must not also be a violation label")
    return Taxonomy(
        version=version,
        labels=labels,
        negative_label=negative,
        negative_title=str(raw.get("negative_title", "")).strip(),
        negative_definition=" ".join(str(raw.get("negative_definition", "")).split()),
        source=source,
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy.

    ``path`` may be a ``taxonomy.yaml`` file or a directory containing one (such as a trained
    model directory). Without a path, the repository's ``data/taxonomy.yaml`` is used.
    """
    if path is None:
        file = REPO_TAXONOMY_PATH
    else:
        file = Path(path)
        if file.is_dir():
            file = file / TAXONOMY_FILENAME
    if not file.is_file():
        raise FileNotFoundError(
            f"taxonomy file not found: {file}. Pass a model directory (it carries "
            f"{TAXONOMY_FILENAME}) or the repository's data/{TAXONOMY_FILENAME}."
        )
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{file}: invalid YAML: {exc}") from exc
    return parse_taxonomy(raw, source=str(file))

"""training.audit on 300 texts of the project's dataset with ten labels broken on purpose: the
broken ones are flagged far above the base rate, the tasks pre-fill the current labels in the
labelling config's terms, and the reviewed export restores the labels through training.merge."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from inference.taxonomy import load_taxonomy
from training.audit import main
from training.data import load_splits, read_jsonl, write_jsonl
from training.labelstudio import to_tasks
from training.merge import main as merge_main

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def broken_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """300 project texts in three splits; 5 clear positives emptied and 5 clear negatives given
    ``dukungan_ktp_perseorangan``. Returns the directory and the original records of the ten."""
    pool = sorted(load_splits(REPO / "data" / "dataset", TAX)["train"], key=lambda r: r["id"])
    random.Random(0).shuffle(pool)
    sub = [dict(r) for r in pool[:300]]
    clear_positive = (["dukungan_ktp_perseorangan"], ["pencalonan_diri"], ["keanggotaan_parpol"],
                      ["alat_peraga_kampanye"])
    positives = [r for r in sub if r["labels"] in clear_positive][:5]
    negatives = [r for r in sub if r.get("kategori_negatif") in ("program_rutin", "ajakan_memilih_netral",
                                                                 "gestur_tanpa_konteks")][:5]
    originals = {r["id"]: dict(r) for r in positives + negatives}
    for r in positives:
        r["labels"], r["kategori_negatif"] = [], "lainnya"
    for r in negatives:
        r.pop("kategori_negatif")
        r["labels"] = ["dukungan_ktp_perseorangan"]
    target = tmp_path_factory.mktemp("audit-data")
    write_jsonl(target / "train.jsonl", sub[:200])
    write_jsonl(target / "validation.jsonl", sub[200:250])
    write_jsonl(target / "test.jsonl", sub[250:])
    assert len(originals) == 10
    return target, originals


def test_audit_flags_broken_labels_and_writes_review_tasks(
        broken_dataset: tuple[Path, dict[str, dict[str, Any]]], tmp_path: Path) -> None:
    data, originals = broken_dataset
    out = tmp_path / "audit_tasks.json"
    assert main(["--data-dir", str(data), "--folds", "3", "--output", str(out)]) == 0
    tasks = json.loads(out.read_text("utf-8"))
    report = json.loads((tmp_path / "audit.json").read_text("utf-8"))
    assert report["examples"] == 300 and report["issues"] == len(tasks) == len(report["ranked"])
    flagged = [t["data"]["id"] for t in tasks]
    hits = set(flagged) & set(originals)
    base_rate = len(flagged) / 300
    assert len(hits) >= 4, f"only {len(hits)} of 10 broken labels flagged"
    assert len(hits) / 10 >= 2 * base_rate, "broken labels are not flagged more often than others"
    qualities = [t["data"]["label_quality"] for t in tasks]
    assert qualities == sorted(qualities) and [t["data"]["audit_rank"] for t in tasks] == list(
        range(1, len(tasks) + 1))
    root = ET.fromstring((REPO / "data" / "label_studio.xml").read_text("utf-8"))
    allowed = {c.get("name"): {x.get("value") for x in c.findall("Choice")} for c in root.iter("Choices")}
    current = {r["id"]: r for s in ("train", "validation", "test") for r in read_jsonl(data / f"{s}.jsonl", TAX)}
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"].startswith("dataset-")
        chosen = {r["from_name"]: r["value"]["choices"] for r in prediction["result"]}
        assert all(r["to_name"] == "text" and set(r["value"]["choices"]) <= allowed[r["from_name"]]
                   for r in prediction["result"])
        record = current[task["data"]["id"]]
        assert chosen.get("labels", []) == record["labels"]  # the current labels, pre-filled
        assert chosen["register"] == [record["register"]]
        assert task["data"]["split"] in ("train", "validation", "test")
        assert task["data"]["suspected"]
    broken_positive = next(t for t in tasks if t["data"]["id"] in hits and not current[t["data"]["id"]]["labels"])
    assert "missing? " in broken_positive["data"]["suspected"]

    # the reviewer restores the true labels; the export goes back through training.merge
    review = []
    for k, task in enumerate(t for t in tasks if t["data"]["id"] in hits):
        (original_task,) = to_tasks([originals[task["data"]["id"]]])
        review.append({"id": k, "data": task["data"], "annotations": original_task["annotations"]})
    export = tmp_path / "reviewed.json"
    export.write_text(json.dumps(review, ensure_ascii=False), "utf-8")
    assert merge_main(["--export", str(export), "--batch", "audit-1", "--data-dir", str(data), "--no-minimums",
                       "--update-existing", "--splits", "train,validation,test"]) == 0
    restored = {r["id"]: r for s in ("train", "validation", "test") for r in read_jsonl(data / f"{s}.jsonl", TAX)}
    for ident in hits:
        assert restored[ident]["labels"] == originals[ident]["labels"]
    assert json.loads((data / "manifest.json").read_text("utf-8"))["dataset_version"] == "1.0.1"


def test_audit_refuses_one_fold(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--folds", "1", "--output", str(tmp_path / "x.json")])

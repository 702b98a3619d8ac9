"""Label Studio config and converters on a realistic export fixture."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import FIXTURES, MINI_DATA, REPO

from inference.taxonomy import load_taxonomy
from training.data import DataError, read_jsonl
from training.labelstudio import from_export, labeling_config, main, to_tasks

TAX = load_taxonomy()


def test_committed_config_matches_the_taxonomy() -> None:
    committed = (REPO / "data" / "label_studio.xml").read_text("utf-8")
    assert committed == labeling_config(TAX)
    root = ET.fromstring(committed)
    choices = {c.get("name"): [x.get("value") for x in c.findall("Choice")] for c in root.iter("Choices")}
    assert choices["labels"] == TAX.names
    assert "asn_eksplisit" in choices["aktor_asn"]


def test_export_to_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new.jsonl"
    assert main(["from-export", str(FIXTURES / "labelstudio_export.json"), str(out)]) == 0
    records = read_jsonl(out, TAX)
    assert [r["id"] for r in records] == ["ls-fb-0001", "ls-news-0002", "ls-wa-0003"]
    assert records[0]["labels"] == ["kampanye_medsos", "foto_simbol_keberpihakan"]
    assert records[0]["aktor_asn"] == "asn_indikasi" and records[0]["register"] == "medsos"
    assert records[1]["labels"] == [] and records[1]["kategori_negatif"] == "penjelasan_aturan"
    # the most recent of two annotations wins
    assert records[2]["labels"] == ["ajakan_mobilisasi", "keputusan_menguntungkan"]
    err = capsys.readouterr().err
    assert "task 104: no (non-cancelled) annotation" in err and "2 tasks skipped" in err


def test_round_trip_dataset_tasks_dataset(tmp_path: Path) -> None:
    original = read_jsonl(MINI_DATA / "train.jsonl", TAX)
    tasks = to_tasks(original)
    export = [{"id": i, **t} for i, t in enumerate(tasks)]
    back, skipped = from_export(json.loads(json.dumps(export)), TAX)
    assert not skipped
    assert back == original


def test_unknown_label_in_export_names_the_task() -> None:
    export = [{"id": 77, "data": {"text": "x"}, "annotations": [
        {"result": [{"from_name": "labels", "type": "choices", "value": {"choices": ["bukan_label"]}}]}]}]
    with pytest.raises(DataError, match="task 77: unknown label"):
        from_export(export, TAX)

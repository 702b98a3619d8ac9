"""training.merge: a labelled Label Studio export goes into the dataset with provenance,
near-duplicates rejected, the test split untouched unless asked, and a new dataset version
that training records; corrections of existing examples; invalid exports write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import MINI_DATA

from inference.taxonomy import load_taxonomy
from training.data import read_jsonl
from training.dataset_version import describe_version, read_manifest
from training.merge import assign_splits, main
from training.model_card import render_model_card

TAX = load_taxonomy()
SIDE = {"jenis_teks": "laporan_dugaan", "aktor_asn": "asn_eksplisit", "register": "medsos", "jenis_pemilihan": "pilbup"}
NEW_TEXTS = {
    "s1": ("Pak Sekdis share flyer cabup nomor 3 di grup WA kantor sambil bilang ayo dukung beliau.",
           ["kampanye_medsos", "interaksi_akun_pemenangan"]),
    "s2": ("Bu guru PNS bagi stiker caleg di depan sekolah pas jam pulang, anak-anak dikasih juga.",
           ["alat_peraga_kampanye"]),
    "s3": ("Rapat pleno rekapitulasi di aula kecamatan berjalan lancar sampai subuh, saksi semua paslon hadir.", []),
    "s4": ("Lurah Cempaka bilang bantuan bedah rumah hanya untuk RT yang suaranya menang buat paslon satu.",
           ["ajakan_mobilisasi"]),
}


def _result(name: str, values: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": values}}


def _task(task_id: int, ident: str, text: str, labels: list[str], user: Any = 3, **side: str) -> dict[str, Any]:
    fields = {**SIDE, **side}
    if not labels:
        fields.setdefault("kategori_negatif", "lainnya")
    result = ([_result("labels", labels)] if labels else []) + [_result(k, [v]) for k, v in fields.items()]
    return {"id": task_id, "data": {"text": text, "id": ident, "source": "real"},
            "annotations": [{"id": 100 + task_id, "completed_by": user, "result": result, "was_cancelled": False,
                             "updated_at": f"2026-12-0{task_id % 9 + 1}T10:00:00Z"}]}


def _data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(MINI_DATA, target)
    return target


def _write(tmp_path: Path, export: list[dict[str, Any]], name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(export, ensure_ascii=False), "utf-8")
    return path


def _snapshot(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data_dir.iterdir())}


def test_export_merge_round_trip_with_provenance_and_version(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    test_before = (data / "test.jsonl").read_bytes()
    export = [_task(i, k, text, labels) for i, (k, (text, labels)) in enumerate(NEW_TEXTS.items(), start=1)]
    export.append({"id": 99, "data": {"text": "belum dilabel", "id": "s9"}, "annotations": []})
    code = main(["--export", str(_write(tmp_path, export)), "--batch", "round-1", "--data-dir", str(data),
                 "--no-minimums", "--date", "2026-12-03"])
    assert code == 0
    merged = {r["id"]: r for split in ("train", "validation") for r in read_jsonl(data / f"{split}.jsonl", TAX)}
    for key, (text, labels) in NEW_TEXTS.items():
        record = merged[f"round-1-{key}"]
        assert record["text"] == text and record["labels"] == labels and record["source"] == "real"
        assert record["aktor_asn"] == "asn_eksplisit"
    assert (data / "test.jsonl").read_bytes() == test_before
    manifest = read_manifest(data)
    assert manifest is not None and manifest["dataset_version"] == "1.1.0"
    entry = manifest["history"][-1]
    assert entry["batch"] == "round-1" and entry["date"] == "2026-12-03" and entry["change"] == "merge"
    assert entry["annotators"] == ["label-studio-user-3"] and entry["source"] == ["real"]
    assert sorted(i for ids in entry["added"].values() for i in ids) == sorted(f"round-1-{k}" for k in NEW_TEXTS)
    assert set(entry["added"]) <= {"train", "validation"}
    assert entry["examples"]["round-1-s1"]["annotated_at"] == "2026-12-02T10:00:00Z"
    assert describe_version(data).startswith("1.1.0 (content sha256 ")
    # the version a model card names
    card = render_model_card(taxonomy=TAX, metrics={"test": {}},
                             thresholds={"thresholds": dict.fromkeys(TAX.names, 0.5)},
                             run={"dataset_version": describe_version(data)})
    assert f"Dataset version: {describe_version(data)}" in card
    # an edit by hand is visible in the version
    with (data / "train.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("\n")
    assert describe_version(data).startswith("1.1.0+modified")


def test_near_duplicates_are_rejected_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path)
    existing = read_jsonl(MINI_DATA / "train.jsonl", TAX)[3]
    text, labels = NEW_TEXTS["s2"]
    export = [
        _task(1, "copy", existing["text"].replace("pengajian", "arisan"), existing["labels"]),
        _task(2, "a", text, labels),
        _task(3, "b", text.replace("jam pulang", "jam istirahat"), labels),  # near-duplicate of "a"
        _task(4, "c", NEW_TEXTS["s3"][0], []),
    ]
    assert main(["--export", str(_write(tmp_path, export)), "--batch", "r2", "--data-dir", str(data),
                 "--no-minimums"]) == 0
    err = capsys.readouterr().err
    assert "rejected r2-copy: near-duplicate (Jaccard" in err and existing["id"] in err
    assert "rejected r2-b: near-duplicate" in err and "of r2-a in this batch" in err
    ids = {r["id"] for split in ("train", "validation", "test") for r in read_jsonl(data / f"{split}.jsonl", TAX)}
    assert {"r2-a", "r2-c"} <= ids and not {"r2-copy", "r2-b"} & ids
    rejected = read_manifest(data)["history"][-1]["rejected"]  # type: ignore[index]
    assert [r["id"] for r in rejected] == ["r2-copy", "r2-b"]


def test_test_split_only_when_named(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    names = ["Ahmad", "Budi", "Citra", "Dodi", "Euis", "Fajar", "Gita", "Hadi", "Indah", "Joko",
             "Kurnia", "Lestari", "Made", "Nanda", "Oki", "Putri", "Qori", "Rudi", "Sari", "Tono"]
    export = [_task(i, f"n{i}", f"Laporan warga nomor {i}: camat {name} hadir di deklarasi paslon bupati nomor {i}.",
                    ["hadir_kampanye_deklarasi"]) for i, name in enumerate(names, start=1)]
    texts = [t["data"]["text"] for t in export]
    assert main(["--export", str(_write(tmp_path, export)), "--batch", "r3", "--data-dir", str(data),
                 "--no-minimums", "--splits", "train,validation,test", "--threshold", "0.95"]) == 0
    added = read_manifest(data)["history"][-1]["added"]  # type: ignore[index]
    assert {s: len(v) for s, v in added.items()} == {"train": 14, "validation": 3, "test": 3}
    assert {r["text"] for r in read_jsonl(data / "test.jsonl", TAX)} >= {texts[int(i[4:]) - 1] for i in added["test"]}


def test_corrections_update_in_place_and_guard_the_test_split(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path)
    train = read_jsonl(MINI_DATA / "train.jsonl", TAX)
    test = read_jsonl(MINI_DATA / "test.jsonl", TAX)
    fix_train = {**train[0], "labels": ["kampanye_medsos", "ajakan_mobilisasi"]}
    fix_test = {**test[0], "labels": [*test[0]["labels"], "fasilitas_atribut_negara"]} if test[0]["labels"] else \
        {**test[0], "labels": ["fasilitas_atribut_negara"]}

    def as_task(i: int, r: dict[str, Any]) -> dict[str, Any]:
        fields = {k: r[k] for k in ("jenis_teks", "aktor_asn", "register", "jenis_pemilihan") if k in r}
        return _task(i, r["id"], r["text"], r["labels"], user={"email": "reviewer@example.org"}, **fields)

    export = _write(tmp_path, [as_task(1, fix_train), as_task(2, fix_test)])
    before = _snapshot(data)
    assert main(["--export", str(export), "--batch", "audit-1", "--data-dir", str(data), "--no-minimums"]) == 1
    assert "pass --update-existing" in capsys.readouterr().err
    assert main(["--export", str(export), "--batch", "audit-1", "--data-dir", str(data), "--no-minimums",
                 "--update-existing"]) == 1
    assert "is in the test split" in capsys.readouterr().err
    assert _snapshot(data) == before  # nothing written by the refused merges
    assert main(["--export", str(export), "--batch", "audit-1", "--data-dir", str(data), "--no-minimums",
                 "--update-existing", "--splits", "train,validation,test"]) == 0
    after = {r["id"]: r for s in ("train", "test") for r in read_jsonl(data / f"{s}.jsonl", TAX)}
    assert after[fix_train["id"]]["labels"] == ["kampanye_medsos", "ajakan_mobilisasi"]
    assert "fasilitas_atribut_negara" in after[fix_test["id"]]["labels"]
    assert len(read_jsonl(data / "train.jsonl", TAX)) == len(train)  # updated, not added
    manifest = read_manifest(data)
    assert manifest is not None and manifest["dataset_version"] == "1.0.1"
    corrected = {c["id"]: c for c in manifest["history"][-1]["corrected"]}
    assert corrected[fix_train["id"]]["old_labels"] == train[0]["labels"]
    assert corrected[fix_test["id"]]["split"] == "test"
    assert manifest["history"][-1]["annotators"] == ["reviewer@example.org"]


def test_invalid_exports_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path)
    before = _snapshot(data)
    bad_label = _write(tmp_path, [_task(7, "x", NEW_TEXTS["s1"][0], ["bukan_label"])], "bad.json")
    assert main(["--export", str(bad_label), "--batch", "b", "--data-dir", str(data), "--no-minimums"]) == 1
    assert "task 7: unknown label" in capsys.readouterr().err
    missing_field = _task(8, "y", NEW_TEXTS["s2"][0], ["alat_peraga_kampanye"])
    missing_field["annotations"][0]["result"] = [r for r in missing_field["annotations"][0]["result"]
                                                 if r["from_name"] != "register"]
    strict = _write(tmp_path, [missing_field], "strict.json")
    assert main(["--export", str(strict), "--batch", "b", "--data-dir", str(data)]) == 1
    assert "task 8: missing field 'register'" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("[{", "utf-8")
    assert main(["--export", str(tmp_path / "broken.json"), "--batch", "b", "--data-dir", str(data)]) == 1
    assert "invalid JSON" in capsys.readouterr().err
    assert main(["--export", str(tmp_path / "none.json"), "--batch", "b", "--data-dir", str(data)]) == 1
    assert "export file not found" in capsys.readouterr().err
    assert _snapshot(data) == before


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path)
    before = _snapshot(data)
    export = _write(tmp_path, [_task(1, "s1", *NEW_TEXTS["s1"])])
    assert main(["--export", str(export), "--batch", "b", "--data-dir", str(data), "--no-minimums", "--dry-run"]) == 0
    assert "dry run: 1 new" in capsys.readouterr().out
    assert _snapshot(data) == before


def test_assign_splits_is_stratified_and_deterministic() -> None:
    records = [{"id": f"r{i:02d}", "labels": [TAX.names[i % 3]] if i % 4 else []} for i in range(40)]
    first = assign_splits(records, TAX, ["train", "validation"], seed=1)
    assert first == assign_splits(list(reversed(records)), TAX, ["train", "validation"], seed=1)
    sizes = {s: len(v) for s, v in first.items()}
    assert sizes["train"] + sizes["validation"] == 40 and 32 <= sizes["train"] <= 35
    for name in TAX.names[:3]:  # every label reaches validation
        assert any(name in r["labels"] for r in first["validation"])
    assert any(not r["labels"] for r in first["validation"])
    assert assign_splits(records[:1], TAX, ["train", "validation"]) == {"train": records[:1], "validation": []}


def test_training_records_the_dataset_version(trained_model_dir: Path) -> None:
    """The model trained on the fixture (which has no manifest) names its data by content hash."""
    recorded = json.loads((trained_model_dir / "metrics.json").read_text("utf-8"))["train"]["dataset_version"]
    assert recorded == describe_version(MINI_DATA) and recorded.startswith("unversioned (content sha256 ")
    assert f"Dataset version: {recorded}" in (trained_model_dir / "README.md").read_text("utf-8")

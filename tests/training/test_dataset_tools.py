"""Dataset schema checks, near-duplicates, stratified splits, DatasetDict, and the real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA, REPO

from inference.taxonomy import load_taxonomy
from training.data import (
    DataError,
    Minimums,
    load_dataset_dict,
    load_splits,
    main,
    near_duplicate_pairs,
    read_jsonl,
    stratified_split,
    validate_splits,
)

TAX = load_taxonomy()
GOOD = {"id": "x1", "text": "Camat ikut deklarasi paslon", "labels": ["hadir_kampanye_deklarasi"],
        "jenis_teks": "laporan_dugaan", "aktor_asn": "asn_eksplisit", "source": "handwritten",
        "register": "berita", "jenis_pemilihan": "pilbup"}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "text": "x"}', "missing field 'labels'"),
    (json.dumps({**GOOD, "labels": ["kampanye_sosmed"]}), "unknown label(s) ['kampanye_sosmed']"),
    (json.dumps({**GOOD, "labels": ["tidak_ada_indikasi"]}), "use [] for no violation"),
    ('{"id": "a", "text": "x", "labels": [}', "invalid JSON"),
    (json.dumps({**GOOD, "text": "   "}), "field 'text' is empty"),
    (json.dumps({**GOOD, "aktor_asn": "pns"}), "field 'aktor_asn' has invalid value 'pns'"),
    (json.dumps({**GOOD, "labels": "kampanye_medsos"}), "field 'labels' must be a list"),
])
def test_bad_lines_are_reported_with_file_line_and_problem(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(DataError) as err:
        read_jsonl(path, TAX)
    assert str(err.value).startswith(f"{path}:2: ")  # file and line
    assert message in str(err.value)


def test_strict_mode_requires_side_fields_and_negative_kind(tmp_path: Path) -> None:
    minimal = {"id": "a", "text": "teks", "labels": []}
    path = write(tmp_path / "d.jsonl", [json.dumps(minimal)])
    assert read_jsonl(path, TAX)[0]["labels"] == []
    with pytest.raises(DataError, match="missing field 'jenis_teks'"):
        read_jsonl(path, TAX, strict=True)
    neg = {**GOOD, "labels": []}
    with pytest.raises(DataError, match="needs 'kategori_negatif'"):
        read_jsonl(write(tmp_path / "n.jsonl", [json.dumps(neg)]), TAX, strict=True)


def test_labels_are_sorted_into_taxonomy_order(tmp_path: Path) -> None:
    rec = {**GOOD, "labels": ["fasilitas_atribut_negara", "kampanye_medsos"]}
    assert read_jsonl(write(tmp_path / "o.jsonl", [json.dumps(rec)]), TAX)[0]["labels"] == [
        "kampanye_medsos", "fasilitas_atribut_negara"]


def test_near_duplicates_are_found_and_distinct_texts_are_not() -> None:
    a = "Pak Camat Sukamaju terlihat hadir di deklarasi pasangan Budi-Rina hari Minggu kemarin di lapangan desa."
    b = "Pak Camat Sukamulya terlihat hadir di deklarasi pasangan Budi-Rina hari Minggu kemarin di lapangan desa!"
    c = "Ayo cek DPT online sebelum 14 Februari, jangan sampai hak pilihmu hilang gara-gara mager."
    pairs = near_duplicate_pairs([a, c, b])
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)]
    assert pairs[0][2] > 0.8


def test_validation_reports_ids_duplicates_and_cross_split_near_duplicates() -> None:
    t = "Kepala sekolah minta guru honorer dan PNS datang ke acara silaturahmi calon bupati nomor 3 sore ini."
    splits = {
        "train": [{**GOOD, "id": "a", "text": t}, {**GOOD, "id": "b", "text": "teks lain sama sekali berbeda"}],
        "validation": [{**GOOD, "id": "a", "text": t.replace("sore", "malam")}],
        "test": [{**GOOD, "id": "c", "text": "teks lain sama sekali berbeda"}],
    }
    report = validate_splits(splits, TAX)
    joined = "\n".join(report.errors)
    assert "duplicate id 'a'" in joined
    assert "exact duplicate text: train/b and test/c" in joined
    assert "near-duplicate (across splits" in joined and "train/a ~ validation/a" in joined


def test_minimums_are_enforced_on_small_data() -> None:
    splits = load_splits(MINI_DATA, TAX, strict=True)
    report = validate_splits(splits, TAX, minimums=Minimums())
    joined = "\n".join(report.errors)
    assert "only 40 examples" in joined and "label kampanye_medsos has" in joined


def test_iterative_stratified_split_is_deterministic_and_proportional() -> None:
    pooled = [r for recs in load_splits(REPO / "data" / "dataset", TAX).values() for r in recs]
    a = stratified_split(pooled, TAX, seed=7)
    b = stratified_split(list(reversed(pooled)), TAX, seed=7)
    assert {k: [r["id"] for r in v] for k, v in a.items()} == {k: [r["id"] for r in v] for k, v in b.items()}
    n = len(pooled)
    assert abs(len(a["train"]) / n - 0.70) < 0.02 and abs(len(a["test"]) / n - 0.15) < 0.02
    for name in TAX.names:
        total = sum(name in r["labels"] for r in pooled)
        in_test = sum(name in r["labels"] for r in a["test"])
        assert abs(in_test / total - 0.15) < 0.05, name
    ids = [r["id"] for v in a.values() for r in v]
    assert len(ids) == len(set(ids)) == n


def test_dataset_dict_has_multi_hot_float_labels() -> None:
    dd = load_dataset_dict(MINI_DATA, TAX)
    assert set(dd) == {"train", "validation", "test"}
    row = dd["train"][14]
    assert row["labels"] == ["ajakan_mobilisasi", "keputusan_menguntungkan"]
    vec = np.array(row["label"])
    assert vec.dtype.kind == "f" and vec.sum() == 2.0
    assert vec[TAX.label2id["keputusan_menguntungkan"]] == 1.0


def test_the_project_dataset_passes_validation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "OK:" in out and "kampanye_medsos" in out


def test_validate_command_fails_with_the_offending_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.jsonl").write_text((MINI_DATA / f"{split}.jsonl").read_text("utf-8"), "utf-8")
    with (tmp_path / "test.jsonl").open("a", encoding="utf-8") as handle:
        handle.write((MINI_DATA / "train.jsonl").read_text("utf-8").splitlines()[0] + "\n")
    assert main(["--data-dir", str(tmp_path), "validate", "--no-minimums"]) == 1
    err = capsys.readouterr().err
    assert "duplicate id 'fx-tr-01'" in err

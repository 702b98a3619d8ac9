"""Real published passages: record checks, de-duplication, source-grouped splits, validation of
the shipped files, the evaluation harness's real-text section and --extra-train-data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA, TINY_TRAIN_FLAGS

from inference.taxonomy import load_taxonomy
from training.data import DataError
from training.real_texts import (
    REAL_DIR,
    deduplicate,
    load_real_splits,
    read_real_jsonl,
    source_groups,
    split_by_group,
    validate_real,
)

TAXONOMY = load_taxonomy()


def passage(i: int, site: str, text: str, labels: list[str] | None = None, **extra: object) -> dict:
    record = {"id": f"t-{i:03d}", "text": text, "labels": labels or [], "jenis_teks": "laporan_dugaan",
              "aktor_asn": "asn_eksplisit", "register": "berita", "jenis_pemilihan": "pilbup", "source": "real",
              "url": f"https://www.{site}/berita/{i}", "site": site, "published": "2024-10-01", "anonymised": False}
    if not record["labels"]:
        record["kategori_negatif"] = "penjelasan_aturan"
        record["jenis_teks"] = "berita_aturan_sosialisasi"
    record.update(extra)
    return record


def write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"url": None}, r"jsonl:2: field 'url' must be an http\(s\) URL"),
    ({"url": "ftp://x.id/a"}, r"jsonl:2: field 'url' must be an http\(s\) URL"),
    ({"site": "tempo.co"}, r"jsonl:2: field 'site' \('tempo.co'\) must be the registrable domain"),
    ({"published": "14/10/2024"}, r"jsonl:2: field 'published' must be YYYY"),
    ({"anonymised": "yes"}, r"jsonl:2: field 'anonymised' must be true or false"),
    ({"source": "handwritten"}, r"jsonl:2: field 'source' must be 'real'"),
    ({"text": "kata " * 200}, r"jsonl:2: passage has 200 words"),
    ({"jenis_teks": None}, r"jsonl:2: missing field 'jenis_teks'"),
])
def test_bad_records_are_named_by_file_line_and_field(tmp_path: Path, change: dict, message: str) -> None:
    good = passage(1, "kompas.com", "Bawaslu menemukan camat hadir di deklarasi paslon.", ["hadir_kampanye_deklarasi"])
    bad = {**passage(2, "detik.com", "ASN dilarang like dan komen akun paslon."), **change}
    bad = {k: v for k, v in bad.items() if v is not None or k == "url"}
    file = write(tmp_path / "real.jsonl", [good, bad])
    with pytest.raises(DataError, match=message) as info:
        read_real_jsonl(file, TAXONOMY)
    assert str(file) in str(info.value)


def test_subdomains_count_as_their_site(tmp_path: Path) -> None:
    record = passage(1, "disway.id", "Seorang lurah memasang baliho paslon di kantor kelurahan.",
                     ["alat_peraga_kampanye"], url="https://jambiindependent.disway.id./read/1")
    assert read_real_jsonl(write(tmp_path / "r.jsonl", [record]), TAXONOMY)[0]["site"] == "disway.id"


def test_deduplicate_keeps_the_first_copy_of_a_syndicated_passage() -> None:
    text = ("Bawaslu Kabupaten Sukamaju menemukan seorang camat hadir dalam deklarasi pasangan calon bupati "
            "di lapangan kecamatan pada Sabtu malam dan akan meneruskan temuan itu ke KASN.")
    records = [passage(1, "a.id", text, ["hadir_kampanye_deklarasi"]),
               passage(2, "b.id", "Sementara itu KPU mengajak warga datang ke TPS pada 27 November."),
               passage(3, "c.id", text + " Baca selengkapnya.", ["hadir_kampanye_deklarasi"])]
    kept, notes = deduplicate(records)
    assert [r["id"] for r in kept] == ["t-001", "t-002"]
    assert notes == [notes[0]] and "t-003 repeats t-001" in notes[0]


def test_sites_carrying_the_same_story_are_grouped() -> None:
    story = ("Panwaslu memanggil dua belas kepala sekolah negeri yang diduga mengajak warga mencoblos kotak "
             "kosong pada pilkada kabupaten tahun ini di kantor panwaslu")
    records = [passage(1, "a.id", story, ["ajakan_mobilisasi"]),
               passage(2, "b.id", story.replace("dua belas", "12") + " kemarin siang.", ["ajakan_mobilisasi"]),
               passage(3, "c.id", "Satpol PP menertibkan ratusan alat peraga kampanye liar di jalan protokol."),
               passage(4, "a.id", "ASN dilarang memberi like pada akun pasangan calon, kata Bawaslu.")]
    groups = source_groups(records)
    assert groups[0] == groups[1] == groups[3] and groups[2] != groups[0]


def test_split_keeps_every_site_in_one_split_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    records = []
    for i in range(120):  # random "words": unrelated texts, so no two sites are merged as one story
        text = " ".join("".join(rng.choice(letters, 6)) for _ in range(20))
        labels = [TAXONOMY.names[i % 12]] if i % 2 else []
        records.append(passage(i, f"site{i % 30}.id", text, labels))
    splits = split_by_group(records, TAXONOMY, seed=3)
    sites = {name: {r["site"] for r in recs} for name, recs in splits.items()}
    assert not (sites["train"] & sites["test"]) and not (sites["validation"] & sites["test"])
    assert not (sites["train"] & sites["validation"])
    assert sum(len(v) for v in splits.values()) == 120
    assert 0.25 <= len(splits["test"]) / 120 <= 0.55
    again = split_by_group(records, TAXONOMY, seed=3)
    assert [r["id"] for r in again["test"]] == [r["id"] for r in splits["test"]]


def test_the_shipped_real_passages_are_valid_and_meet_the_targets() -> None:
    errors, stats = validate_real(REAL_DIR)
    assert errors == []
    assert stats["total"] >= 400 and stats["sites"] >= 40 and stats["hard_negative_share"] >= 0.4
    real = load_real_splits(REAL_DIR)
    assert all(r["url"].startswith("http") for recs in real.values() for r in recs)


def test_a_leak_between_real_train_and_test_is_reported(tmp_path: Path) -> None:
    real = load_real_splits(REAL_DIR)
    leaked = dict(real["test"][0], id="leak-1")
    for name, recs in real.items():
        write(tmp_path / f"{name}.jsonl", recs + ([leaked] if name == "train" else []))
    errors, _ = validate_real(tmp_path)
    assert any("near-duplicate" in e and "leak-1" in e for e in errors)
    assert any(f"url {leaked['url']!r} is in both real train and real test" in e for e in errors)


def test_data_validate_covers_the_real_passages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.data import main

    real = load_real_splits(REAL_DIR)
    broken = dict(real["train"][0], site="example.org")
    write(tmp_path / "train.jsonl", [broken, *real["train"][1:]])
    for name in ("validation", "test"):
        write(tmp_path / f"{name}.jsonl", real[name])
    assert main(["--data-dir", str(MINI_DATA), "validate", "--no-minimums", "--real-dir", str(tmp_path)]) == 1
    assert "real passages:" in capsys.readouterr().err
    assert main(["--data-dir", str(MINI_DATA), "validate", "--no-minimums", "--real-dir", str(REAL_DIR)]) == 0


def test_false_flag_rate_counts_flagged_negatives_per_kind() -> None:
    from training.real_eval import false_flags

    records = [{"labels": []} | {"kategori_negatif": k} for k in ("penjelasan_aturan", "penjelasan_aturan",
                                                                  "kampanye_bukan_asn")]
    records.append({"labels": ["kampanye_medsos"]})
    y_pred = np.zeros((4, 12), dtype=int)
    y_pred[0, 3] = y_pred[2, 0] = y_pred[3, 0] = 1
    result = false_flags(records, y_pred)
    assert result["negatives"] == 3 and result["false_flags"] == 2
    assert result["false_flag_rate"] == pytest.approx(2 / 3)
    assert result["by_kind"]["penjelasan_aturan"]["false_flag_rate"] == 0.5
    assert result["by_kind"]["kampanye_bukan_asn"]["false_flag_rate"] == 1.0


def test_every_evaluation_report_has_the_real_test_part(tmp_path: Path) -> None:
    from training.evaluate import main

    real = write(tmp_path / "real_test.jsonl", load_real_splits(REAL_DIR)["test"][:40])
    out = tmp_path / "report"
    assert main(["--baseline-only", "--data-dir", str(MINI_DATA), "--split", "test", "--output-dir", str(out),
                 "--no-robustness", "--bootstrap", "20", "--no-progress", "--real-test", str(real)]) == 0
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    entry = metrics["real_test"]["systems"]["TF-IDF + LR baseline"]
    assert metrics["real_test"]["num_examples"] == 40
    negatives = sum(1 for line in real.read_text("utf-8").splitlines() if not json.loads(line)["labels"])
    assert entry["false_flags"]["negatives"] == negatives
    assert {"micro_f1", "macro_f1", "any_violation_f1"} <= set(entry) and "any_violation_f1" in entry["bootstrap"]
    report = (out / "report.md").read_text("utf-8")
    assert "## Real published text" in report and "| **real** |" in report and "| hand-written |" in report
    out2 = tmp_path / "without"
    assert main(["--baseline-only", "--data-dir", str(MINI_DATA), "--split", "test", "--output-dir", str(out2),
                 "--no-robustness", "--bootstrap", "0", "--no-progress", "--no-real-test"]) == 0
    assert json.loads((out2 / "metrics.json").read_text("utf-8"))["real_test"] is None


def test_real_gain_compares_both_training_sets(tmp_path: Path) -> None:
    from training.real_gain import compare_baselines, markdown

    real = load_real_splits(REAL_DIR)
    for name, recs in real.items():
        write(tmp_path / f"{name}.jsonl", recs[:30])
    result = compare_baselines(MINI_DATA, tmp_path, n_boot=0)
    sizes = result["train_sizes"]
    assert sizes["hand-written + real train"] == sizes["hand-written only"] + 30
    for recipe in ("hand-written only", "hand-written + real train"):
        assert set(result["results"][recipe]) == {"real validation", "real test", "hand-written test"}
    assert "| hand-written + real train | real test (30) |" in markdown(result)


def test_extra_train_data_is_trained_on_and_recorded(tiny_backbone: Path, tmp_path: Path) -> None:
    from training.train import main

    extra = write(tmp_path / "extra.jsonl", load_real_splits(REAL_DIR)["train"][:6])
    out = tmp_path / "model"
    flags = [f for f in TINY_TRAIN_FLAGS]
    flags[flags.index("--num-train-epochs") + 1] = "2"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), *flags,
          "--extra-train-data", str(extra)])
    train = json.loads((out / "metrics.json").read_text("utf-8"))["train"]
    base = sum(1 for line in (MINI_DATA / "train.jsonl").read_text("utf-8").splitlines() if line.strip())
    assert train["num_train"] == base + 6 and train["extra_train_data"] == {str(extra): 6}
    bad = write(tmp_path / "bad.jsonl", [{"id": "x", "text": "teks", "labels": ["bukan_label"]}])
    with pytest.raises(SystemExit, match=r"--extra-train-data: .*bad\.jsonl:1: unknown label"):
        main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(tmp_path / "m2"), *flags,
              "--extra-train-data", str(bad)])


def test_a_malformed_adjudication_line_is_named(tmp_path: Path) -> None:
    from training.real_texts import apply_adjudication

    records = [passage(1, "a.id", "Camat hadir di deklarasi paslon.", ["hadir_kampanye_deklarasi"])]
    lines = ['{"id": "t-001", "final": ["hadir_kampanye_deklarasi"]}', '{"id": "t-001"}']
    (tmp_path / "adjudication.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(DataError, match=r"adjudication\.jsonl:2: expected an object with an 'id' and a 'final'"):
        apply_adjudication(records, tmp_path, TAXONOMY)
    (tmp_path / "adjudication.jsonl").write_text("{not json\n", "utf-8")
    with pytest.raises(DataError, match=r"adjudication\.jsonl:1: invalid JSON"):
        apply_adjudication(records, tmp_path, TAXONOMY)

"""training.select: strategies on crafted pools, Label Studio tasks that match the labelling
config, texts already in the dataset never selected, bad input with clear errors; and the
stop-set kappa of training.stopping."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MINI_DATA, REPO

from inference.taxonomy import load_taxonomy
from training.data import char_ngram_matrix
from training.labelstudio import from_export
from training.select import (
    SelectionError,
    label_uncertainty,
    main,
    model_version,
    read_pool,
    select_diverse,
    select_random,
    select_uncertainty,
)
from training.stopping import cohen_kappa, decision_agreement, should_stop

TAX = load_taxonomy()
MINI_TEXTS = [json.loads(line)["text"] for split in ("train", "validation", "test")
              for line in (MINI_DATA / f"{split}.jsonl").read_text("utf-8").splitlines()]

#: new posts, none close to a fixture text
FRESH = [
    "Pak Sekdis share flyer cabup nomor 3 di grup WA kantor, katanya biar kita tahu programnya.",
    "Bu guru honorer bagi stiker caleg di depan sekolah pas jam pulang, anak-anak dikasih juga.",
    "Rapat pleno rekapitulasi di aula kecamatan berjalan lancar sampai subuh, saksi semua paslon hadir.",
    "Kabag Umum setda kelihatan duduk di barisan depan acara deklarasi relawan paslon dua semalam.",
    "Jadwal vaksinasi polio di puskesmas pembantu dimajukan ke hari Kamis karena petugas cuti.",
    "Lurah Cempaka bilang bantuan bedah rumah hanya untuk RT yang suaranya menang buat paslon satu.",
    "PNS dinas perikanan ikut pelantikan pengurus ranting partai, pakai jaket partai di panggung.",
    "Info: pendaftaran beasiswa daerah dibuka sampai akhir bulan, syaratnya rapor dan surat keterangan.",
]


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _config_choices() -> tuple[dict[str, tuple[str, set[str]]], set[str]]:
    """``{choices name: (toName, allowed values)}`` and the data keys the config reads."""
    root = ET.fromstring((REPO / "data" / "label_studio.xml").read_text("utf-8"))
    choices = {c.get("name"): (c.get("toName"), {x.get("value") for x in c.findall("Choice")})
               for c in root.iter("Choices")}
    variables = {t.get("value", "").lstrip("$") for t in root.iter("Text")}
    return choices, variables


# --------------------------------------------------------------------------- strategies
def test_label_uncertainty_is_one_on_the_threshold_and_zero_at_the_far_end() -> None:
    t = np.array([0.5, 0.3, 0.8])
    u = label_uncertainty(np.array([[0.5, 0.3, 0.8], [0.0, 1.0, 0.0], [0.75, 0.0, 0.9]]), t)
    assert np.allclose(u[0], 1.0)
    assert np.allclose(u[1], [0.0, 0.0, 0.0])  # the farthest point from each threshold
    assert np.allclose(u[2], [0.5, 1 - 0.3 / 0.7, 1 - 0.1 / 0.8])


def test_uncertainty_picks_the_texts_nearest_a_threshold() -> None:
    t = np.array([0.5, 0.3])
    probs = np.array([
        [0.02, 0.01],   # certain negative
        [0.98, 0.05],   # certain positive
        [0.52, 0.01],   # label 0 almost on its threshold
        [0.10, 0.29],   # label 1 almost on its threshold
        [0.70, 0.60],   # fairly sure of both
        [0.45, 0.02],
    ])
    picks, scores = select_uncertainty(probs, t, 3)
    assert picks.tolist() == [3, 2, 5]
    assert list(scores) == sorted(scores, reverse=True)


def test_diverse_skips_near_duplicates_and_gives_rare_labels_a_turn() -> None:
    t = np.array([0.5, 0.5, 0.5])
    texts = [
        "Camat ikut deklarasi paslon nomor dua di lapangan kecamatan, duduk paling depan bersama tim.",
        "Camat ikut deklarasi paslon nomor dua di lapangan kecamatan, duduk paling depan bersama timnya.",
        "Kepala sekolah minta guru pilih calon bupati nomor satu saat rapat dewan guru hari Senin.",
        "Lurah kumpulkan fotokopi KTP warga untuk calon perseorangan, katanya untuk data bantuan.",
        "Posyandu lansia bulan ini pindah ke balai RW karena aula kelurahan sedang diperbaiki.",
    ]
    probs = np.array([
        [0.50, 0.05, 0.02],  # most uncertain, label 0
        [0.51, 0.05, 0.02],  # its near-duplicate
        [0.60, 0.05, 0.02],  # label 0 again
        [0.05, 0.05, 0.30],  # the only text uncertain about label 2, which is never predicted
        [0.45, 0.05, 0.02],
    ])
    plain, _ = select_uncertainty(probs, t, 3)
    assert set(plain.tolist()) == {0, 1, 4}  # both near-duplicates, and no label-2 text
    ngrams = char_ngram_matrix(texts)
    picks, _, info = select_diverse(probs, t, 3, ngrams, similarity=0.5, min_uncertainty=0.5)
    assert len(picks) == 3 and len(set(picks.tolist())) == 3
    assert not {0, 1} <= set(picks.tolist()), "two near-duplicates picked together"
    assert 3 in picks.tolist(), "the rare label's uncertain text was left out"
    assert info["skipped_near_duplicates"] >= 1
    assert info["picked_by_label"].get(2) == 1


def test_diverse_fills_the_batch_after_the_label_turns_run_dry() -> None:
    t = np.array([0.5, 0.5])
    probs = np.array([[0.01, 0.02], [0.99, 0.03], [0.02, 0.97], [0.5, 0.01]])
    picks, _, _ = select_diverse(probs, t, 4, None, min_uncertainty=0.9)
    assert sorted(picks.tolist()) == [0, 1, 2, 3]
    assert picks[0] == 3  # the only text within the uncertainty floor comes first


def test_random_is_seeded_and_without_repeats() -> None:
    a, _ = select_random(50, 10, seed=1)
    b, _ = select_random(50, 10, seed=1)
    c, _ = select_random(50, 10, seed=2)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert len(set(a.tolist())) == 10 and max(a) < 50


# --------------------------------------------------------------------------- pools
def test_read_pool_formats_ids_and_skipped_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"post_id": f"p{i}", "isi": text, "platform": "x"} for i, text in enumerate(FRESH[:3])]
    rows.append({"post_id": "p9", "isi": "  ", "platform": "x"})
    rows.append({"post_id": "p10", "isi": FRESH[0].upper(), "platform": "x"})  # a repeat, case aside
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pool.parquet")
    with (tmp_path / "pool.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name in ("pool.parquet", "pool.jsonl"):
        pool = read_pool(tmp_path / name, "isi", "post_id")
        assert pool.ids == ["p0", "p1", "p2"]
        assert pool.extras[0] == {"platform": "x"}
        assert pool.skipped == {"missing or empty text": 1, "repeat of an earlier pool text": 1}
    (tmp_path / "pool.txt").write_text("\n".join(FRESH[:2]) + "\n", "utf-8")
    assert read_pool(tmp_path / "pool.txt").ids == ["row-1", "row-2"]


def test_bad_input_gives_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_model = str(tmp_path / "no-model")  # input problems are found before the model is loaded

    def run(pool: Path, *extra: str) -> tuple[int, str]:
        code = main(["--model-dir", no_model, "--pool", str(pool), "--n", "3", "--output",
                     str(tmp_path / "t.json"), "--data-dir", str(MINI_DATA), *extra])
        return code, capsys.readouterr().err

    empty = _write_csv(tmp_path / "empty.csv", [], ["id", "text"])
    code, err = run(empty)
    assert code == 1 and "the pool is empty" in err
    blank = _write_csv(tmp_path / "blank.csv", [{"id": "a", "text": " "}, {"id": "b", "text": ""}], ["id", "text"])
    code, err = run(blank)
    assert code == 1 and "no usable text in 2 rows" in err
    code, err = run(_write_csv(tmp_path / "cols.csv", [{"id": "a", "isi": FRESH[0]}], ["id", "isi"]))
    assert code == 1 and "no column 'text'" in err and "isi" in err and "--text-column" in err
    code, err = run(tmp_path / "missing.csv")
    assert code == 1 and "pool file not found" in err
    small = _write_csv(tmp_path / "small.csv", [{"id": "a", "text": FRESH[0]}, {"id": "b", "text": MINI_TEXTS[0]}],
                       ["id", "text"])
    code, err = run(small)
    assert code == 1 and "only 1 texts can be selected" in err and "fewer than --n 3" in err
    assert "already in the dataset" in err and "--allow-fewer" in err
    assert not (tmp_path / "t.json").exists()
    with pytest.raises(SystemExit):
        main(["--model-dir", no_model, "--pool", str(small), "--n", "0", "--output", "x.json"])


# --------------------------------------------------------------------------- end to end
def test_tasks_import_into_the_labelling_config(trained_model_dir: Path, tmp_path: Path) -> None:
    near_copy = MINI_TEXTS[3].replace("pengajian", "arisan")
    rows = [{"post_id": f"p{i}", "isi": t, "platform": "facebook"} for i, t in enumerate(FRESH)]
    rows += [{"post_id": "dup", "isi": "  " + MINI_TEXTS[0].lower() + " "}, {"post_id": "near", "isi": near_copy}]
    pool = _write_csv(tmp_path / "pool.csv", rows, ["post_id", "isi", "platform"])
    choices, variables = _config_choices()
    for strategy in ("random", "uncertainty", "diverse"):
        out, report = tmp_path / f"{strategy}.json", tmp_path / f"{strategy}.report.json"
        code = main(["--model-dir", str(trained_model_dir), "--pool", str(pool), "--text-column", "isi",
                     "--id-column", "post_id", "--n", "5", "--strategy", strategy, "--output", str(out),
                     "--data-dir", str(MINI_DATA), "--batch", "round-1", "--report", str(report)])
        assert code == 0
        tasks = json.loads(out.read_text("utf-8"))
        assert len(tasks) == 5
        ids = [t["data"]["id"] for t in tasks]
        assert "dup" not in ids and "near" not in ids  # in the dataset / a near-duplicate of it
        assert json.loads(report.read_text("utf-8"))["selectable"] == len(FRESH)
        assert [t["data"]["selection_rank"] for t in tasks] == [1, 2, 3, 4, 5]
        for task in tasks:
            data = task["data"]
            assert variables <= set(data) and data["text"] in FRESH
            assert data["batch"] == "round-1" and data["selection_strategy"] == strategy
            assert data["pool_platform"] == "facebook" and data["source"] == "real"
            assert isinstance(data["selection_score"], float)
            (prediction,) = task["predictions"]
            assert re.fullmatch(r"model@[0-9a-f]{10}", prediction["model_version"])
            assert 0.0 <= prediction["score"] <= 1.0
            assert abs(prediction["score"] - (1 - data["uncertainty"])) < 1e-5
            for result in prediction["result"]:
                to_name, allowed = choices[result["from_name"]]
                assert result["to_name"] == to_name and result["type"] == "choices"
                assert set(result["value"]["choices"]) <= allowed
                assert "; ".join(result["value"]["choices"]) == data["predicted_labels"]
        if strategy == "uncertainty":
            assert [t["data"]["selection_score"] for t in tasks] == sorted(
                (t["data"]["selection_score"] for t in tasks), reverse=True)
        # accepting the pre-annotations in Label Studio gives a valid export
        export = [{"id": k, "data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]}
                  for k, t in enumerate(tasks)]
        records, skipped = from_export(export, TAX)
        assert not skipped and [r["id"] for r in records] == ids


def test_stop_set_kappa_in_a_selection_round(trained_model_dir: Path, tmp_path: Path) -> None:
    pool = _write_csv(tmp_path / "pool.csv", [{"text": t} for t in FRESH], ["text"])
    stop = _write_csv(tmp_path / "stop.csv", [{"text": t} for t in MINI_TEXTS[:10]], ["text"])
    report = tmp_path / "report.json"
    code = main(["--model-dir", str(trained_model_dir), "--pool", str(pool), "--n", "2", "--output",
                 str(tmp_path / "t.json"), "--data-dir", str(MINI_DATA), "--stop-set", str(stop),
                 "--previous-model-dir", str(trained_model_dir), "--report", str(report)])
    assert code == 0
    agreement = json.loads(report.read_text("utf-8"))["stop_set"]
    assert agreement["kappa"] == 1.0 and agreement["changed_texts"] == 0 and agreement["num_texts"] == 10


def test_cohen_kappa_and_the_stopping_rule() -> None:
    a = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0])
    # observed 6/8 = 0.75; expected 3/8*3/8 + 5/8*5/8 = 0.53125
    assert cohen_kappa(a, b) == pytest.approx((0.75 - 0.53125) / (1 - 0.53125))
    assert cohen_kappa(np.zeros(5), np.zeros(5)) == 1.0
    result = decision_agreement(np.array([[1, 0], [0, 0]]), np.array([[1, 0], [0, 1]]), ["a", "b"])
    assert result["changed_texts"] == 1 and result["per_label_kappa"]["a"] == 1.0
    assert result["flagged_before"] == 1 and result["flagged_after"] == 2
    assert not should_stop([0.995, 0.999])
    assert should_stop([0.8, 0.99, 0.995, 0.999]) and not should_stop([0.999, 0.999, 0.95])


def test_model_version_names_the_model_and_hashes_its_weights(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    (tmp_path / "metrics.json").write_text(json.dumps({"train": {"model_name": "indobert-r2"}}), "utf-8")
    first = model_version(tmp_path)
    assert re.fullmatch(r"indobert-r2@[0-9a-f]{10}", first)
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert model_version(tmp_path) != first


def test_read_pool_rejects_repeated_ids(tmp_path: Path) -> None:
    pool = _write_csv(tmp_path / "p.csv", [{"id": "a", "text": FRESH[0]}, {"id": "a", "text": FRESH[1]}],
                      ["id", "text"])
    with pytest.raises(SelectionError, match="id 'a' repeats"):
        read_pool(pool, "text", "id")

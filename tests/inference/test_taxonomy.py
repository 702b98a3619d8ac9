"""The taxonomy file is the single source of truth for the 12 labels and their order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inference.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy

EXPECTED = [
    "kampanye_medsos", "interaksi_akun_pemenangan", "foto_simbol_keberpihakan",
    "hadir_kampanye_deklarasi", "ajakan_mobilisasi", "alat_peraga_kampanye", "tim_pemenangan",
    "keanggotaan_parpol", "pencalonan_diri", "dukungan_ktp_perseorangan",
    "keputusan_menguntungkan", "fasilitas_atribut_negara",
]


def raw_taxonomy() -> dict:
    return yaml.safe_load(load_taxonomy().source and Path(load_taxonomy().source).read_text("utf-8"))


def test_repository_taxonomy_has_the_twelve_labels_in_order() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.names == EXPECTED
    assert taxonomy.negative_label == "tidak_ada_indikasi"
    assert taxonomy.version.count(".") == 2
    assert taxonomy.id2label[0] == "kampanye_medsos" and taxonomy.label2id["fasilitas_atribut_negara"] == 11
    for label in taxonomy.labels:
        assert label.title and label.gloss and label.definition
        assert label.cues and label.hardest_negatives
        assert any(label.legal_basis.values()), label.name


def test_loads_from_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "taxonomy.yaml").write_text(Path(load_taxonomy().source).read_text("utf-8"), "utf-8")
    assert load_taxonomy(tmp_path).names == EXPECTED


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["labels"].append(dict(d["labels"][0])), "duplicate label name 'kampanye_medsos'"),
        (lambda d: d["labels"][2].update(colour="red"),
         "labels[2] (foto_simbol_keberpihakan) has unknown key(s): colour"),
        (lambda d: d.update(extra_section=1), "unknown top-level key(s): extra_section"),
        (lambda d: d["labels"][0].pop("definition"), "missing key(s): definition"),
        (lambda d: d.update(taxonomy_version="v1"), "taxonomy_version must be a 'MAJOR.MINOR.PATCH'"),
        (lambda d: d["labels"][1].update(name="Interaksi Akun"), "name must be lower_snake_case"),
        (lambda d: d["labels"][3]["legal_basis"].update(kuhp=["x"]), "legal_basis has unknown key(s): kuhp"),
        (lambda d: d.update(negative_label="kampanye_medsos"), "must not also be a violation label"),
    ],
)
def test_malformed_taxonomy_is_rejected_with_a_precise_message(mutate, message: str) -> None:
    data = raw_taxonomy()
    mutate(data)
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(data, source="bad.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("bad.yaml: ")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("labels: [\n  - name: x", "utf-8")
    with pytest.raises(TaxonomyError, match="invalid YAML"):
        load_taxonomy(bad)
    with pytest.raises(FileNotFoundError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "nowhere")

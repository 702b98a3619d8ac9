"""Text normalisation shared by training and inference."""

import pytest

from inference.text import normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cek  @budi_99 https://t.co/x ✌️  mantaaaap", "Cek @USER HTTPURL emoji_dua_jari mantaaap"),
        ("lihat www.kpu.go.id/dpt dan bit.ly/abc", "lihat HTTPURL dan HTTPURL"),
        ("email saya a.b@mail.com tetap", "email saya a.b@mail.com tetap"),
        ("𝗖𝗢𝗕𝗟𝗢𝗦 2️⃣ 👍🏽", "COBLOS emoji_angka_2 emoji_jempol"),
        ("baris satu\n\nbaris\tdua", "baris satu baris dua"),
        ("Kasus ASN #NetralitasASN 🇮🇩", "Kasus ASN #NetralitasASN 🇮🇩"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_is_idempotent_and_keeps_case() -> None:
    once = normalize_text("Pak CAMAT @camat_x ✌ https://x.id")
    assert normalize_text(once) == once
    assert "CAMAT" in once


def test_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        normalize_text(None)  # type: ignore[arg-type]

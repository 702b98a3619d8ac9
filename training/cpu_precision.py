"""Whether bf16 autocast pays off on this CPU, and turning it off where it does not.

On CPUs with native bf16 instructions (AVX512-BF16, e.g. AMD Zen 4 and Intel Cooper Lake, or
Intel AMX) bf16 autocast makes a training step of multilingual-e5-small about 1.4x faster than
fp32 (measured on the build machine, batch 16 x 128 tokens). Elsewhere PyTorch emulates bf16,
which is slower than fp32 and less precise, so a recipe that asks for bf16 trains in fp32 there.
"""

from __future__ import annotations

from typing import Any


def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matrix products natively (AVX512-BF16 or AMX)."""
    try:
        import torch
    except ImportError:
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    for probe in probes:
        try:
            if probe is not None and bool(probe()):
                return True
        except (RuntimeError, AttributeError):  # a build without the check answers nothing useful
            continue
    return False


def drop_emulated_bf16(training_args: Any, native: bool | None = None) -> bool:
    """Switch ``training_args.bf16`` off on a CPU-only machine without native bf16; say so.

    Returns True when bf16 was turned off. GPU runs are left to the Trainer.
    """
    if not getattr(training_args, "bf16", False):
        return False
    import torch

    if torch.cuda.is_available():
        return False
    if native is None:
        native = cpu_has_native_bf16()
    if native:
        return False
    training_args.bf16 = False
    if getattr(training_args, "mixed_precision", None) == "bf16":  # set from bf16 when the args were built
        training_args.mixed_precision = "no"
    print("note: bf16 was asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX); PyTorch "
          "would emulate it, slower than fp32, so training runs in fp32.", flush=True)
    return True

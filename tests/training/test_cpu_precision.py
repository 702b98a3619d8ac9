"""bf16 on CPU: kept where the CPU has native bf16, turned off (and said) where it would be emulated."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cpu_precision import cpu_has_native_bf16, drop_emulated_bf16
from training.train import parse_args


def _args(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return parse_args(["--model-name-or-path", "offline-minilm", "--output-dir", str(tmp_path), *extra])[3]


def test_emulated_bf16_is_turned_off_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(tmp_path, "--bf16", "true")
    if args.bf16:  # parse_args kept it: this CPU runs bf16 natively
        assert cpu_has_native_bf16()
    args.bf16, args.mixed_precision = True, "bf16"
    assert drop_emulated_bf16(args, native=False)
    assert not args.bf16 and args.mixed_precision == "no"
    assert "no native bf16" in capsys.readouterr().out


def test_native_bf16_and_fp32_runs_are_left_alone(tmp_path: Path) -> None:
    args = _args(tmp_path, "--bf16", "true")
    args.bf16, args.mixed_precision = True, "bf16"
    assert not drop_emulated_bf16(args, native=True)
    assert args.bf16 and args.mixed_precision == "bf16"
    fp32 = _args(tmp_path)
    assert not fp32.bf16 and not drop_emulated_bf16(fp32, native=False)


def test_a_bf16_run_trains_and_saves_fp32_weights(tiny_backbone: Path, tmp_path: Path) -> None:
    import json

    from conftest import TINY_TRAIN_FLAGS
    from safetensors import safe_open

    from training.train import main

    flags = list(TINY_TRAIN_FLAGS)
    flags[flags.index("--num-train-epochs") + 1] = "8"
    out = tmp_path / "model"
    main(["--model-name-or-path", str(tiny_backbone), "--output-dir", str(out), "--bf16", "true", *flags])
    train = json.loads((out / "metrics.json").read_text("utf-8"))["train"]
    assert 0 < train["train_loss"] < 1.07  # 1.07: the untrained loss of this data with pos_weight
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        dtypes = {str(weights.get_tensor(name).dtype) for name in weights.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert dtypes == {"torch.float32"}  # autocast computes in bf16, the parameters stay fp32

#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install the project with every extra
# that the demo and the tests need. Safe to run again: it only installs when pyproject.toml
# changed since the last successful install.
#
#   TORCH_SPEC   the torch requirement installed first (default torch==2.13.0, the CPU wheel
#                on these machines; on a GPU machine see README "GPU").
#   VENV         where the environment lives (default .venv)
#   PYTHON       the interpreter that creates it (default python3, must be >= 3.10)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-onnx,train,offline,parquet,ray,dev}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$TORCH_SPEC $EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing $TORCH_SPEC and the project with extras [$EXTRAS]"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first: a range that the installed torch satisfies then installs nothing more.
  "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
  "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
else
  echo "[setup] $VENV is up to date"
fi

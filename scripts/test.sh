#!/usr/bin/env bash
# Set up (or reuse) .venv and run the full test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest -ra --durations=15 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests (exit code 5)" >&2
  exit 1
fi
exit "$status"

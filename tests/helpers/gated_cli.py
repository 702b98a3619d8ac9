"""``python -m inference`` with a gate, so a test can interrupt it at a point it controls.

    GATED_CLI_MARKER=/tmp/gate GATED_CLI_AFTER_CHUNKS=2 python tests/helpers/gated_cli.py <CLI args>

Runs the real CLI (:func:`inference.cli.main`); only :func:`inference.cli.score_rows` is
wrapped. The first ``GATED_CLI_AFTER_CHUNKS`` chunks are scored and saved as usual; the call
for the next chunk creates the marker file and then waits until the process is signalled.
The CLI saves each chunk (part file renamed into place) before it reads the next one, so when
the marker exists exactly ``GATED_CLI_AFTER_CHUNKS`` part files are complete and nothing of the
next chunk has been written: a signal sent then lands at a known point, whatever the load of
the machine.

SIGINT gets Python's default handler (KeyboardInterrupt) back, as in an interactive terminal:
a process started from a non-interactive shell's background job inherits SIGINT as ignored.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import inference.cli as cli

#: how long the gate waits for a signal before giving up (a safety net, never reached in a passing test)
GATE_LIMIT_S = 900.0


def main() -> int:
    marker = Path(os.environ["GATED_CLI_MARKER"])
    open_chunks = int(os.environ["GATED_CLI_AFTER_CHUNKS"])
    real_score_rows = cli.score_rows
    calls = 0

    def gated_score_rows(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if calls == open_chunks:
            marker.write_text(f"{os.getpid()}\n", encoding="utf-8")
            deadline = time.monotonic() + GATE_LIMIT_S
            while time.monotonic() < deadline:  # a signal ends this wait (KeyboardInterrupt or kill)
                time.sleep(0.05)
            print(f"gated_cli: no signal arrived within {GATE_LIMIT_S:.0f} s", file=sys.stderr)
            os._exit(99)
        calls += 1
        return real_score_rows(*args, **kwargs)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli.score_rows = gated_score_rows
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

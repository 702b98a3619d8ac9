"""``python -m inference``: score a file of posts (see :mod:`inference.cli`)."""

from inference.cli import main

raise SystemExit(main())

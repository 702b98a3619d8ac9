# Convenience aliases for the scripts in scripts/ (they work without make too).
.PHONY: setup demo test lint
setup:
	bash scripts/setup.sh
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
lint: setup
	.venv/bin/ruff check training inference tests
	.venv/bin/mypy training inference

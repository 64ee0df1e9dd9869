# The two commands: `make demo` runs the product on bundled real data, `make test` proves it.
.PHONY: demo test lint bench

demo:
	bash scripts/setup.sh
	.venv/bin/flights demo

test: lint
	.venv/bin/python -m pytest

# Lint, format and types (mypy: strict on pipelines/, configured in pyproject.toml).
lint:
	bash scripts/setup.sh --with-test-server
	.venv/bin/ruff check pipelines tests bench scripts
	.venv/bin/ruff format --check pipelines tests bench scripts
	.venv/bin/mypy pipelines

bench:
	.venv/bin/python bench/ingest.py

# The two commands: `make demo` runs the product on bundled real data, `make test` proves it.
.PHONY: demo test lint bench

demo:
	bash scripts/setup.sh
	.venv/bin/flights demo

test:
	bash scripts/setup.sh --with-test-server
	.venv/bin/ruff check pipelines tests bench
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check pipelines tests bench
	.venv/bin/ruff format --check pipelines tests bench

bench:
	.venv/bin/python bench/ingest.py

#!/usr/bin/env bash
# Command 2: install everything (with the test tools), check lint, import order and types, and
# run the full test suite against a real embedded PostGIS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "ruff check (lint + import order)"
.venv/bin/ruff check .
echo "mypy cadastre gis tiles api"
.venv/bin/mypy cadastre gis tiles api
# two processes, each taking whole test files (module fixtures stay in one process); the shared
# databases are built once under an advisory lock and cloned per test (tests/conftest.py).
# CADASTRE_TEST_WORKERS=0 runs everything in this process.
exec .venv/bin/python -m pytest -n "${CADASTRE_TEST_WORKERS:-2}" --dist loadfile "$@"

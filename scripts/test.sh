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
exec .venv/bin/python -m pytest "$@"

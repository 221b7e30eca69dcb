#!/usr/bin/env bash
# Command 2: install everything and run the full test suite against a real embedded PostGIS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

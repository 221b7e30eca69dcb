#!/usr/bin/env bash
# Command 1: install everything, start the embedded PostGIS under var/, load the demo district
# and serve it on http://127.0.0.1:8000 (Ctrl-C stops the server; `cadastre db stop` the database).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cadastre demo "$@"

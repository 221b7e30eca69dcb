#!/usr/bin/env bash
# Regenerate requirements/constraints.txt, the pinned versions of every Python dependency (runtime
# and all extras), from pyproject.toml. Versions already pinned are kept where they still fit;
# `scripts/lock.sh --upgrade` moves every pin to the newest release that fits pyproject.toml.
# scripts/setup.sh installs with this file as pip constraints, so every machine gets the same set.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python -m pip install -q pip-tools
exec .venv/bin/pip-compile --all-extras --strip-extras --no-emit-index-url --no-emit-find-links \
  --no-emit-trusted-host --quiet --output-file=requirements/constraints.txt "$@" pyproject.toml

#!/usr/bin/env bash
# Run the whole test suite from nothing: venv, install (builds the C++ core), tests.
# Usage: bash tools/test.sh [pytest args...]
# Artefacts (screenshots, benchmark output) go to ./test-artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q '.[test]'
mkdir -p test-artifacts
# Run from outside the source tree so the installed package (with its built core) is tested.
cd tests
exec ../.venv/bin/python -m pytest -ra -p no:cacheprovider "$@" .

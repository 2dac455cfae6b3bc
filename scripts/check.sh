#!/usr/bin/env bash
# Lint, format check and type check: ruff and mypy as configured in pyproject.toml (run by scripts/test.sh).
#   bash scripts/check.sh            # with the tools on PATH or in .venv-test
#   KEPLER_TEST_VENV=/path/to/venv bash scripts/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
venv="${KEPLER_TEST_VENV:-.venv-test}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
bin="$venv/bin"
[ -x "$bin/ruff" ] || bin="$(dirname "$(command -v ruff)")"

"$bin/ruff" check .
"$bin/ruff" format --check .

# mypy checks the installed layout: compilers/, runtimes/ and targets/ are kepler.compilers, kepler.runtimes
# and kepler.targets. A temporary tree of links gives it that layout without installing anything.
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/kepler"
for entry in kepler/*; do ln -s "$root/$entry" "$tree/kepler/"; done
for package in compilers runtimes targets; do ln -s "$root/$package" "$tree/kepler/$package"; done
(cd "$tree" && "$bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$root/.mypy_cache" -p kepler) \
    | sed "s#^kepler/compilers/#compilers/#; s#^kepler/runtimes/#runtimes/#; s#^kepler/targets/#targets/#"
exit "${PIPESTATUS[0]}"

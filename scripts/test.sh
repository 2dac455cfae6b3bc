#!/usr/bin/env bash
# Installs Kepler from a freshly built wheel into its own virtualenv, then runs the test suite.
# An editable install would hide files missing from the wheel, so the tests import the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${KEPLER_TEST_VENV:-.venv-test}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
rm -rf dist build
"$venv/bin/python" -m pip wheel -q --no-deps --wheel-dir dist .
wheel="$(ls dist/kepler_ml-*.whl)"
# constraints.txt pins the tested versions (scripts/upgrade.sh moves them deliberately).
"$venv/bin/python" -m pip install -q -c constraints.txt "${wheel}[test]"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"

# The wheel must carry every package: import them from outside the source tree.
outside="$(mktemp -d)"
(cd "$outside" && "$venv/bin/python" -c '
import kepler, kepler.compilers, kepler.runtimes, kepler.targets
assert "site-packages" in kepler.compilers.__file__, kepler.compilers.__file__
print("wheel ok:", kepler.__version__, kepler.compilers.__file__)
print("profiles:", kepler.targets.list_profiles())
')
rmdir "$outside"
# In the repository root the source tree shadows the wheel, and must work too (tests/test_source_tree_import.py).
"$venv/bin/python" -c 'import kepler, kepler.compilers, kepler.runtimes, kepler.targets; print("source tree ok:", kepler.__file__)'

# Lint, format and types (ruff, mypy; pyproject.toml) before the tests.
KEPLER_TEST_VENV="$venv" bash scripts/check.sh

export KEPLER_TEST_WHEEL=1
# Three workers (pytest-xdist), a test file per worker so module fixtures are built once. The CI machine has
# 2 cores, but a worker often waits (on a search's child process, a server starting, a subprocess): with two,
# the cores were busy 91% of the time; three bring the suite from about 6 min 15 s to 5 min 45 s here.
# KEPLER_TEST_WORKERS=0 runs everything in one process.
exec "$venv/bin/pytest" -q -n "${KEPLER_TEST_WORKERS:-3}" --dist loadfile "$@"

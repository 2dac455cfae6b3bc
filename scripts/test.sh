#!/usr/bin/env bash
# Installs Kepler from a freshly built wheel into its own virtualenv, then runs the test suite.
# An editable install would hide files missing from the wheel, so the tests import the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${KEPLER_TEST_VENV:-.venv-test}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
rm -rf dist build
"$venv/bin/python" -m pip wheel -q --no-deps --wheel-dir dist .
wheel="$(ls dist/kepler_ml-*.whl)"
"$venv/bin/python" -m pip install -q "${wheel}[test]"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"

# The wheel must carry every package: import them from outside the source tree.
(cd "$(mktemp -d)" && "$OLDPWD/$venv/bin/python" -c '
import kepler, kepler.compilers, kepler.runtimes, kepler.targets
assert "site-packages" in kepler.compilers.__file__, kepler.compilers.__file__
print("wheel ok:", kepler.__version__, kepler.compilers.__file__)
print("profiles:", kepler.targets.list_profiles())
')

export KEPLER_TEST_WHEEL=1
exec "$venv/bin/pytest" -q "$@"

#!/usr/bin/env bash
# The main job, end to end on the shipped example data: install, train an example model,
# compile it for the edge and cloud targets (with parity checks), and benchmark it against native.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${KEPLER_VENV:-.venv}"
out="${KEPLER_DEMO_OUT:-demo-out}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c constraints.txt .  # the tested versions
export PATH="$PWD/$venv/bin:$PATH"

kepler --version
kepler targets list
kepler build examples/data/sensors.csv --label failure --target edge --time-budget 60s --output "$out/builds"
python examples/train_example.py --data examples/data/sensors.csv --output "$out"
for target in edge cloud; do
  kepler compile "$out/model.joblib" --target "$target" --sample "$out/sample.csv" --output "$out/artifacts/$target"
done
kepler bench "$out/artifacts/edge" --target edge --compare-native "$out/model.joblib"
kepler bench "$out/artifacts/cloud" --target cloud --compare-native "$out/model.joblib" --json > "$out/bench-cloud.json"
echo "build (report.html) in $out/builds; artifacts in $out/artifacts; cloud benchmark in $out/bench-cloud.json"

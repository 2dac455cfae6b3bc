#!/usr/bin/env bash
# Deliberate upgrades: resolve Kepler's dependencies afresh, newest first, run the tests, record the result.
#
# Usage:
#   bash scripts/upgrade.sh                          # newest versions pyproject.toml's bounds allow, whole suite
#   bash scripts/upgrade.sh tests/compilers -x       # the same, a chosen subset (any pytest arguments)
#   bash scripts/upgrade.sh --no-caps tests/compilers  # also lift the upper bounds: what would the next releases do?
#   bash scripts/upgrade.sh --write-lock             # when the tests pass, constraints.txt becomes the resolved set
#
# The resolution ignores constraints.txt and runs in a new virtualenv (KEPLER_UPGRADE_VENV, default a
# temporary folder removed at exit), so it sees what a fresh `pip install kepler-ml` would get today.
# The result (every version tried against the lock, passed or failed, pytest's summary) goes to
# KEPLER_UPGRADE_RESULT (default docs/upgrade-result.md); the README's "Dependencies" section quotes it.
# Exit status: pytest's (0 when the tests pass), or 1 when the resolution itself fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

caps=1
write_lock=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-caps) caps=0; shift ;;
        --write-lock) write_lock=1; shift ;;
        --help|-h) sed -n '2,14p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
if [ "$write_lock" = 1 ] && [ "$caps" = 0 ]; then
    echo "upgrade: --write-lock needs the bounds; raise them in pyproject.toml first, then run without --no-caps" >&2
    exit 2
fi

result="${KEPLER_UPGRADE_RESULT:-docs/upgrade-result.md}"
case "$result" in /*) ;; *) result="$root/$result" ;; esac
if [ -n "${KEPLER_UPGRADE_VENV:-}" ]; then
    venv="$KEPLER_UPGRADE_VENV"
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
        echo "upgrade: $venv exists and is not a virtualenv; name a new folder" >&2
        exit 2
    fi
else
    venv="$(mktemp -d "${TMPDIR:-/tmp}/kepler-upgrade.XXXXXX")"
    trap 'rm -rf "$venv"' EXIT
fi
work="$venv/.upgrade"
python="${KEPLER_PYTHON:-python3}"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
SECONDS=0

"$python" -m venv --clear "$venv"
mkdir -p "$work"
"$venv/bin/python" -m pip install -q --upgrade pip

# The requirements: [project] dependencies and the test extra, upper bounds lifted with --no-caps.
"$venv/bin/python" - "$caps" "$work/requirements.txt" <<'EOF'
import re, sys, tomllib
caps, out = sys.argv[1] == "1", sys.argv[2]
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
lines = []
for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
    if not caps:
        name, _, spec = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?(.*)", requirement).groups()
        spec = ",".join(part for part in spec.split(",") if part.strip() and not part.strip().startswith("<"))
        requirement = name + spec
    lines.append(requirement)
open(out, "w").write("\n".join(lines) + "\n")
EOF

# The wheel is built from a copy of the tree's files (tracked, and untracked but not ignored), so no stale
# build/ folder leaks into it and the work tree is left as it was.
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -C "$work/src" -xf -
"$venv/bin/python" -m pip wheel -q --no-deps --wheel-dir "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
    || { echo "upgrade: building the wheel failed:" >&2; tail -n 20 "$work/build.log" >&2; exit 1; }
wheel="$(ls "$work"/dist/kepler_ml-*.whl)"
if ! "$venv/bin/python" -m pip install -q -r "$work/requirements.txt" >"$work/install.log" 2>&1; then
    resolution="failed"
    grep -v '^WARNING: Location' "$work/install.log" | tail -n 20 >&2
else
    resolution="ok"
    "$venv/bin/python" -m pip install -q --no-deps "$wheel"
fi
"$venv/bin/python" -m pip freeze --exclude kepler-ml >"$work/resolved.txt"

status=1
summary="not run: the resolution failed (pip's last lines are above)"
if [ "$resolution" = ok ]; then
    set +e
    (cd "$work" && "$venv/bin/python" -c 'import kepler, kepler.compilers, kepler.runtimes, kepler.targets')
    status=$?
    if [ "$status" = 0 ]; then
        KEPLER_TEST_WHEEL=1 "$venv/bin/pytest" -q -p no:cacheprovider "$@" 2>&1 | tee "$work/pytest.log"
        status="${PIPESTATUS[0]}"
        summary="$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)|no tests ran' "$work/pytest.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')"
    else
        summary="not run: importing the installed wheel failed"
    fi
    set -e
fi
outcome="$([ "$status" = 0 ] && echo passed || echo failed)"

# The record: each declared dependency's locked and tried versions, then every other change.
"$venv/bin/python" - "$work/resolved.txt" "$result" "$outcome" "$summary" "$started" "$SECONDS" "$caps" "$*" <<'EOF'
import platform, re, sys, tomllib
from pathlib import Path
resolved_path, result, outcome, summary, started, seconds, caps, args = sys.argv[1:]

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def pins(text):
    found = {}
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if match:
            found[canonical(match[1])] = match[2]
    return found

lock_file = Path("constraints.txt")
lock = pins(lock_file.read_text()) if lock_file.exists() else {}
tried = pins(Path(resolved_path).read_text())
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = project["dependencies"] + project["optional-dependencies"]["test"]
declared = [re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r)[0] for r in requirements]
rows = []
for name in declared:
    key = canonical(name)
    locked, now = lock.get(key, "-"), tried.get(key, "-")
    rows.append(f"| {name} | {locked} | {now} | {'' if locked == now else 'changed'} |")
others = sorted(
    f"{key} {lock.get(key, '-')} -> {tried.get(key, '-')}"
    for key in set(lock) | set(tried)
    if key not in {canonical(n) for n in declared} and lock.get(key) != tried.get(key)
)
minutes, secs = divmod(int(seconds), 60)
text = [
    "# Last dependency upgrade check (scripts/upgrade.sh)",
    "",
    f"- when: {started}, {minutes} min {secs} s",
    f"- python: {platform.python_version()} on {platform.machine()} ({platform.system()})",
    f"- bounds: {'pyproject.toml as written' if caps == '1' else 'upper bounds lifted (--no-caps)'}",
    f"- tests: `pytest {args}`".rstrip() if args else "- tests: the whole suite",
    f"- result: **{outcome}** ({summary})",
    f"- {len(tried)} packages resolved; {sum(1 for k in tried if lock.get(k) != tried[k])} differ from constraints.txt",
    "",
    "| declared | constraints.txt | tried | |",
    "|---|---|---|---|",
    *rows,
    "",
    "Other packages that differ from constraints.txt: " + ("; ".join(others) if others else "none") + ".",
    "",
]
Path(result).parent.mkdir(parents=True, exist_ok=True)
temporary = Path(result).with_name(Path(result).name + ".tmp")
temporary.write_text("\n".join(text), encoding="utf-8")
temporary.replace(result)
EOF
echo "upgrade: $outcome ($summary); the record is in ${result#"$root/"}"

if [ "$write_lock" = 1 ] && [ "$status" = 0 ]; then
    {
        echo "# The tested set of Kepler's dependencies and of its test extra, resolved in a fresh virtualenv."
        echo "# Used as pip's constraints by scripts/test.sh and scripts/demo.sh (and so by CI):"
        echo "#   pip install -c constraints.txt 'kepler-ml[test]'"
        echo "# Written by scripts/upgrade.sh --write-lock after the tests passed with it (docs/upgrade-result.md);"
        echo "# resolved on Python $("$venv/bin/python" -c 'import platform; print(platform.python_version(), platform.machine())')."
        cat "$work/resolved.txt"
    } >"$root/constraints.txt.tmp"
    mv "$root/constraints.txt.tmp" "$root/constraints.txt"
    echo "upgrade: constraints.txt rewritten from the resolved set"
fi
exit "$status"

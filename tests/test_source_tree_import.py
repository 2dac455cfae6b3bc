"""Python started in the repository root imports a working ``kepler`` from the source tree, whatever the install.

In the root, ``import kepler`` finds the source folder ``kepler/`` before any installed copy, while
``kepler.compilers``, ``kepler.runtimes`` and ``kepler.targets`` live in the sibling folders that
pyproject.toml maps into the package. ``kepler/__init__.py`` adds the root to its ``__path__`` there.
scripts/test.sh installs the wheel (a regular install, ``KEPLER_TEST_WHEEL=1``), so the first test runs
the README's case as written; the second removes an editable install's import hook, so it holds the
same case in a development environment too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

IMPORTS = (
    "import json, sys\n"
    "import kepler, kepler.compilers, kepler.runtimes, kepler.targets\n"
    "print(json.dumps({'kepler': kepler.__file__, 'compilers': kepler.compilers.__file__,\n"
    "    'runtimes': kepler.runtimes.__file__, 'targets': kepler.targets.__file__,\n"
    "    'path': list(kepler.__path__), 'profiles': kepler.targets.list_profiles(),\n"
    "    'hooks': sorted(m for m in sys.modules if 'editable' in m)}))\n"
)


def _python(args: list[str], cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_source_tree(found: dict) -> None:
    assert Path(found["kepler"]) == REPO / "kepler" / "__init__.py"
    for name in ("compilers", "runtimes", "targets"):
        assert Path(found[name]) == REPO / name / "__init__.py", name
    assert [Path(p) for p in found["path"]] == [REPO / "kepler", REPO]
    assert {"edge", "cloud"} <= set(found["profiles"])


def test_the_readme_import_works_in_the_repository_root() -> None:
    # The acceptance command as written: `python -c "import kepler, ..."` with the repository root as cwd.
    _assert_source_tree(_python(["-c", IMPORTS], cwd=REPO))


def test_the_source_tree_works_without_an_editable_installs_import_hook() -> None:
    # -S skips site-packages' .pth files, where an editable install puts the hook that maps kepler.compilers;
    # site-packages itself is appended by hand for the dependencies: what a regular install gives in the root.
    purelib = sysconfig.get_paths()["purelib"]
    found = _python(["-S", "-c", f"import sys; sys.path.append({purelib!r})\n" + IMPORTS], cwd=REPO)
    assert found["hooks"] == []
    _assert_source_tree(found)


def test_the_installed_wheel_keeps_its_own_path(tmp_path: Path) -> None:
    # Outside the source tree the wheel's kepler/ holds compilers/, runtimes/ and targets/ itself.
    if not os.environ.get("KEPLER_TEST_WHEEL"):
        pytest.skip("an editable install: scripts/test.sh runs this against the installed wheel")
    found = _python(["-P", "-c", IMPORTS], cwd=tmp_path)
    package = Path(found["kepler"]).parent
    assert "site-packages" in package.parts and found["path"] == [str(package)]
    assert Path(found["compilers"]) == package / "compilers" / "__init__.py"


@pytest.mark.parametrize(
    ("layout", "extended"),
    [
        ("source tree", True),
        ("no pyproject.toml", False),
        ("installed: compilers inside kepler/", False),
        ("a sibling folder missing", False),
    ],
)
def test_the_path_is_extended_only_in_a_source_tree(tmp_path: Path, layout: str, extended: bool) -> None:
    (tmp_path / "kepler").mkdir()
    shutil.copy(REPO / "kepler" / "__init__.py", tmp_path / "kepler" / "__init__.py")
    for name in ("compilers", "runtimes", "targets"):
        if not (layout == "a sibling folder missing" and name == "runtimes"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text("")
    if layout != "no pyproject.toml":
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'kepler-ml'\n")
    if layout.startswith("installed"):
        (tmp_path / "kepler" / "compilers").mkdir()
        (tmp_path / "kepler" / "compilers" / "__init__.py").write_text("")
    code = "import json, kepler; print(json.dumps(list(kepler.__path__)))"
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    path = [Path(p) for p in json.loads(done.stdout)]
    assert path == ([tmp_path / "kepler", tmp_path] if extended else [tmp_path / "kepler"])

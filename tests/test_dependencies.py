"""pyproject.toml declares every distribution Kepler imports and caps those whose private API it uses; the lock fits."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("kepler", "compilers", "runtimes", "targets")
# Test, benchmark and example code may also use the test extra.
OTHER_FOLDERS = ("tests", "benchmarks", "examples", "scripts")
# Declared but never imported by name, each for a reason.
USED_WITHOUT_IMPORT = {"pyarrow": "pandas' Parquet engine, for kepler.data's Parquet tables"}
# Libraries whose private API Kepler uses (DESIGN.md, "compat"): each needs an upper bound.
PRIVATE_API_USED = {
    "bentoml",
    "skl2onnx",
    "onnxmltools",
    "scikit-learn",
    "lightgbm",
    "flaml",
    "dvc",
    "dvc-data",
    "onnxruntime",
    "mlflow",
    "uvicorn",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
    project = _project()
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {_canonical(r.name): r for r in map(Requirement, listed)}


def _imports(folders: tuple[str, ...], root: Path = REPO) -> dict[str, set[str]]:
    """Top-level names of every absolute import (function-level ones too) -> the files importing them."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            if any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(root).parts):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(root)))
    return found


def _local_modules(folders: tuple[str, ...]) -> set[str]:
    """Modules of the repository itself that scripts import by putting their folder on sys.path."""
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            names.add(path.stem)
            names.update(parent.name for parent in path.relative_to(REPO).parents if parent.name)
    return names


def _undeclared(
    folders: tuple[str, ...], declared: set[str], local: set[str], root: Path = REPO
) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for name, files in sorted(_imports(folders, root).items()):
        if name in sys.stdlib_module_names or name in ("kepler", "__future__") or name in local:
            continue
        provided = {_canonical(d) for d in distributions.get(name, [])}
        if not provided:
            problems.append(f"{name} (imported by {sorted(files)[0]}) is not installed")
        elif not provided & declared:
            problems.append(
                f"{name} (imported by {sorted(files)[0]}) comes from {sorted(provided)}, not declared"
            )
    return problems


def test_every_distribution_the_package_imports_is_declared() -> None:
    # No local modules here: kepler/, compilers/, runtimes/ and targets/ import each other only as kepler.*.
    assert _undeclared(PACKAGE_FOLDERS, set(_requirements()), local=set()) == []


def test_tests_benchmarks_and_examples_import_only_declared_distributions() -> None:
    declared = set(_requirements()) | set(_requirements("test"))
    assert _undeclared(OTHER_FOLDERS, declared, local=_local_modules(OTHER_FOLDERS)) == []


def test_every_declared_dependency_is_used() -> None:
    distributions = packages_distributions()
    imported = {_canonical(d) for name in _imports(PACKAGE_FOLDERS) for d in distributions.get(name, [])}
    unused = set(_requirements()) - imported - set(USED_WITHOUT_IMPORT)
    assert unused == set()


def test_the_check_names_an_undeclared_import(tmp_path: Path) -> None:
    # yaml is installed (PyYAML) but left out of `declared`, and the import sits inside a function.
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "module.py").write_text(
        "import os\nimport numpy\n\ndef load():\n    import yaml.constructor\n    return yaml\n",
        encoding="utf-8",
    )
    problems = _undeclared(("package",), {"numpy"}, local=set(), root=tmp_path)
    assert problems == ["yaml (imported by package/module.py) comes from ['pyyaml'], not declared"]


def _compat_libraries() -> dict[str, str]:
    """Distribution -> its kepler/_compat/ module (one module per library, named by its import name)."""
    distributions = packages_distributions()
    found = {}
    for path in sorted((REPO / "kepler" / "_compat").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        names = {
            _canonical(n)
            for n in distributions.get(path.stem) or distributions.get(path.stem.split("_")[0], [])
        }
        assert names, (
            f"kepler/_compat/{path.name}: name the module after the import name of the library it wraps"
        )
        # mlflow's modules come from mlflow, mlflow-skinny and mlflow-tracing: the declared one carries the bound.
        declared = names & set(_requirements())
        found.update({name: f"kepler/_compat/{path.name}" for name in declared or names})
    return found


def test_libraries_whose_private_api_kepler_uses_are_capped() -> None:
    requirements = _requirements()
    uncapped = []
    for name in sorted(PRIVATE_API_USED | set(_compat_libraries())):
        requirement = requirements.get(name)
        if requirement is None or not any(spec.operator == "<" for spec in requirement.specifier):
            uncapped.append(f"{name}: {requirement or 'not declared'}")
    assert uncapped == [], "add an upper bound (the next minor release) in pyproject.toml"


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
            assert match, f"constraints.txt: {line!r} is not a name==version pin"
            pins[_canonical(match[1])] = Version(match[2])
    return pins


def test_the_lock_pins_every_declared_distribution_inside_its_bounds() -> None:
    lock = _lock()
    assert "kepler-ml" not in lock  # a constraint on Kepler itself would clash with installing the wheel
    for extra in (None, "test"):
        for name, requirement in _requirements(extra).items():
            assert name in lock, f"constraints.txt pins no {name}; run scripts/upgrade.sh --write-lock"
            assert requirement.specifier.contains(lock[name], prereleases=True), (
                f"constraints.txt pins {name}=={lock[name]}, outside pyproject.toml's {requirement}"
            )


def test_the_two_commands_install_with_the_lock() -> None:
    for script in ("scripts/test.sh", "scripts/demo.sh"):
        installs = [
            line
            for line in (REPO / script).read_text(encoding="utf-8").splitlines()
            if re.search(r"pip install\b", line) and "--no-deps" not in line and "--upgrade pip" not in line
        ]
        assert installs and all("-c constraints.txt" in line for line in installs), (script, installs)

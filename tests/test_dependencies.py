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
# Optional extras of the package (scale-out, issue 12): imported lazily, only where the user asked for them.
OPTIONAL_EXTRAS = ("spark", "s3", "postgres")
# Declared but never imported by name, each for a reason.
USED_WITHOUT_IMPORT = {
    "pyarrow": "pandas' Parquet engine, for kepler.data's Parquet tables",
    "dvc-s3": "DVC's plugin for s3:// remotes (kepler init --remote s3://...)",
    "psycopg2-binary": "SQLAlchemy's PostgreSQL driver, for MLflow's postgresql:// tracking stores",
}
# Libraries whose private API Kepler uses (DESIGN.md, "compat"): each needs an upper bound, and every use sits in
# its kepler/_compat/ module (distribution -> the module and the private names it uses: modules, attributes,
# files). Outside kepler/_compat/ none of these names may appear in code.
PRIVATE_API_USED: dict[str, tuple[str, tuple[str, ...]]] = {
    "bentoml": ("bentoml", ("_internal", "TimeoutMiddleware", "_set_timer_out", "construct_containerfile")),
    "uvicorn": ("uvicorn", ("h11_impl", "H11Protocol", "send_400_response", "default_headers")),
    "skl2onnx": (
        "skl2onnx",
        (
            "_registration",
            "_converter_pool",
            "_shape_calculator_pool",
            "_apply_operation",
            "add_tree_to_attribute_pairs",
        ),
    ),
    "onnxmltools": ("onnxmltools", ("operator_converters",)),
    "scikit-learn": ("sklearn", ("_predictors", "_validate_params")),
    "lightgbm": (
        "lightgbm",
        ("_Booster", "_n_features", "_n_features_in", "_objective", "_other_params", "_n_classes", "_le"),
    ),
    "dvc": ("dvc", ("rwlock", "oid_to_path", "cloud.pull")),
    "dvc-data": ("dvc", ("dvc_data",)),
    "joblibspark": ("joblibspark", ("_cancel_all_jobs", "_backend_args", "_backend_kwargs")),
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
    project = _project()
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    # The test extra pulls the optional extras in by naming Kepler itself (kepler-ml[spark,...]).
    requirements = (Requirement(r) for r in listed)
    return {_canonical(r.name): r for r in requirements if _canonical(r.name) != "kepler-ml"}


def _package_requirements() -> dict[str, Requirement]:
    """The dependencies and the optional extras: what the package's own code may import."""
    found = _requirements()
    for extra in OPTIONAL_EXTRAS:
        found.update(_requirements(extra))
    return found


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
    assert _undeclared(PACKAGE_FOLDERS, set(_package_requirements()), local=set()) == []


def test_tests_benchmarks_and_examples_import_only_declared_distributions() -> None:
    declared = set(_package_requirements()) | set(_requirements("test"))
    assert _undeclared(OTHER_FOLDERS, declared, local=_local_modules(OTHER_FOLDERS)) == []


def test_every_declared_dependency_is_used() -> None:
    distributions = packages_distributions()
    imported = {_canonical(d) for name in _imports(PACKAGE_FOLDERS) for d in distributions.get(name, [])}
    unused = set(_package_requirements()) - imported - set(USED_WITHOUT_IMPORT)
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
        declared = names & set(_package_requirements())
        found.update({name: f"kepler/_compat/{path.name}" for name in declared or names})
    return found


def test_libraries_whose_private_api_kepler_uses_are_capped() -> None:
    requirements = _package_requirements()
    uncapped = []
    for name in sorted(set(PRIVATE_API_USED) | set(_compat_libraries())):
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
    for extra in (None, "test", *OPTIONAL_EXTRAS):
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


def _code_names(path: Path) -> tuple[ast.Module, set[str], list[str]]:
    """A file's tree; the names its code uses (import paths and their parts, imported names, attributes, ``a.b``
    for each attribute ``b`` of ``a``, and the functions it defines); and its string constants other than
    docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    names: set[str] = set()
    strings: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names.update((node.module or "").split("."))
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)  # an override of a library's private method
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
            if isinstance(node.value, ast.Attribute | ast.Name):
                owner = node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id
                names.add(f"{owner}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            strings.append(node.value)
    return tree, names, strings


def _package_files(outside_compat: bool = True) -> list[Path]:
    found = []
    for folder in PACKAGE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO).parts
            if any(part.startswith(".") or part == "__pycache__" for part in parts):
                continue
            if outside_compat and parts[:2] == ("kepler", "_compat"):
                continue
            found.append(path)
    return found


def _uses(names: set[str], strings: list[str], private: str) -> bool:
    word = re.compile(rf"(?<![\w]){re.escape(private)}(?![\w])")
    return private in names or any(word.search(text) for text in strings)


def test_every_listed_private_api_use_sits_in_its_compat_module() -> None:
    outside = []
    for path in _package_files():
        _, names, strings = _code_names(path)
        for distribution, (_, privates) in PRIVATE_API_USED.items():
            outside += [
                f"{path.relative_to(REPO)}: {p} ({distribution})"
                for p in privates
                if _uses(names, strings, p)
            ]
    assert outside == [], "move each use into kepler/_compat/ (a shim with its canary in tests/_compat/)"
    for distribution, (module, privates) in PRIVATE_API_USED.items():
        _, names, strings = _code_names(REPO / "kepler" / "_compat" / f"{module}.py")
        unused = [p for p in privates if not _uses(names, strings, p)]
        assert unused == [], (
            f"kepler/_compat/{module}.py no longer uses {unused} of {distribution}: update the list"
        )


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_other_private_api_is_used_outside_the_compat_layer() -> None:
    """Beyond the list: outside kepler/_compat/, no import of a library's private module or name, and no private
    attribute but those of Kepler's own classes and modules (and the standard library's, such as os._exit)."""
    trees = {
        path: ast.parse(path.read_text(encoding="utf-8")) for path in _package_files(outside_compat=False)
    }
    # Private attributes of Kepler's own objects: set on self or cls, or in a class body.
    members: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        members.add(statement.name)
                    targets = statement.targets if isinstance(statement, ast.Assign) else []
                    if isinstance(statement, ast.AnnAssign):
                        targets = [statement.target]
                    members.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    members.add(node.attr)
    found = []
    for path, tree in trees.items():
        if path.relative_to(REPO).parts[:2] == ("kepler", "_compat"):
            continue
        where = path.relative_to(REPO)
        # Names bound to Kepler's or the standard library's modules.
        modules_here = set(sys.stdlib_module_names)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kepler"):
                modules_here.update(alias.asname or alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                modules_here.update(a.asname for a in node.names if a.asname and a.name.startswith("kepler"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if node.attr not in members and owner not in modules_here:
                    found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
            modules = []
            if isinstance(node, ast.Import):
                modules = [(node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                modules = [(node.lineno, name) for name in names]
            for line, module in modules:
                parts = module.split(".")
                if parts[0] in ("kepler", "__future__") or parts[0] in sys.stdlib_module_names:
                    continue
                if any(_private(part) for part in parts):
                    found.append(f"{where}:{line}: import {module}")
    assert found == [], "move each use into kepler/_compat/ (a shim with its canary in tests/_compat/)"


def test_each_compat_module_names_its_versions_and_has_canaries() -> None:
    for path in sorted((REPO / "kepler" / "_compat").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert re.search(r"\b\d+\.\d+", docstring), (
            f"{path.name}: name the library versions it was written for"
        )
        canaries = REPO / "tests" / "_compat" / f"test_{path.stem}.py"
        assert canaries.is_file(), f"{path.name} has no canary tests ({canaries.relative_to(REPO)})"

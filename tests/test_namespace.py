"""``import kepler as kp``: the guide's callables stay plain functions whatever Kepler modules were imported before,
and no Kepler module rewrites the import system's state (``sys.modules``, a module's class)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("kepler", "compilers", "runtimes", "targets")


@pytest.mark.integration
def test_top_level_functions_are_not_shadowed_by_modules() -> None:
    code = (
        "import inspect, pkgutil, sys, types\n"
        "import kepler as kp\n"
        "import kepler.cli.commands, kepler.builds, kepler.versioning.project, kepler.deployment\n"
        "for info in pkgutil.iter_modules(kepler.deployment.__path__, 'kepler.deployment.'):\n"
        "    if info.name != 'kepler.deployment.entry_service':  # configures a service from the environment\n"
        "        __import__(info.name)\n"
        "for name in ('build', 'deploy', 'compile', 'init', 'bench'):\n"
        "    assert inspect.isfunction(getattr(kp, name)), (name, getattr(kp, name))\n"
        "assert kp.build.__module__ == 'kepler.builds'\n"
        "assert kp.deploy.__module__ == 'kepler.deployment.deployments'\n"
        "assert not callable(kepler.deployment)\n"
        "swapped = [n for n, m in list(sys.modules.items()) if n.startswith('kepler') and type(m) is not types.ModuleType]\n"
        "assert swapped == [], swapped\n"
    )
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _import_state_writes(tree: ast.AST) -> list[str]:
    """Statements that change ``sys.modules`` or a module's class: assignments and deletions of its items,
    its mutating methods, ``importlib.reload``, and assignments to ``__class__``."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            text = ast.unparse(target)
            if text.startswith("sys.modules") or text.endswith(".__class__"):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            method = called.rsplit(".", 1)
            if (len(method) == 2 and method[0] == "sys.modules" and method[1] != "get") or called in (
                "importlib.reload",
                "reload",
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_rewrites_the_import_state() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in SOURCES
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in _import_state_writes(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_scan_sees_each_kind_of_write() -> None:
    source = (
        "import sys, importlib\n"
        "sys.modules.pop('a', None)\n"
        "del sys.modules['b']\n"
        "sys.modules['c'] = object()\n"
        "sys.modules[__name__].__class__ = type\n"
        "importlib.reload(sys)\n"
        "present = sys.modules.get('d')\n"
    )
    lines = sorted(int(found.split(":")[0]) for found in _import_state_writes(ast.parse(source)))
    assert lines == [2, 3, 4, 5, 6]

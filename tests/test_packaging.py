"""pyproject.toml ships every folder of Kepler's packages, each declared as setuptools asks.

setuptools warns ("Package ... is absent from the `packages` configuration") when a folder inside a
listed package holds files but is not listed itself, and will stop shipping such folders; this test
holds the same rule without building a wheel (which needs a package index).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _folder(package: str, package_dir: dict[str, str]) -> Path:
    for prefix in sorted(package_dir, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            rest = package[len(prefix) :].lstrip(".")
            return REPO / package_dir[prefix] / Path(*rest.split(".")) if rest else REPO / package_dir[prefix]
    return REPO / Path(*package.split("."))


def _shipped_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix not in (".pyc", ".pyo")]


def test_every_folder_of_a_listed_package_is_listed() -> None:
    config = _setuptools()
    packages, package_dir = set(config["packages"]), config.get("package-dir", {})
    unlisted = []
    for package in sorted(packages):
        folder = _folder(package, package_dir)
        assert folder.is_dir(), f"{package} -> {folder} is not a folder"
        for sub in folder.iterdir():
            name = f"{package}.{sub.name}"
            if sub.is_dir() and sub.name != "__pycache__" and _shipped_files(sub) and name not in packages:
                unlisted.append(name)
    assert unlisted == []


def test_the_presets_and_profiles_ship_as_package_data() -> None:
    config = _setuptools()
    packages, package_dir, data = (
        set(config["packages"]),
        config.get("package-dir", {}),
        config["package-data"],
    )
    for package, folder_name in (
        ("kepler.automl.presets", "kepler/automl/presets"),
        ("kepler.targets", "targets"),
    ):
        assert package in packages and package in data
        folder = _folder(package, package_dir)
        assert folder == REPO / folder_name
        matched = {p for pattern in data[package] for p in folder.glob(pattern)}
        assert matched and matched == {p for p in folder.glob("*.toml")}

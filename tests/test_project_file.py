"""kepler.project_file: the nearest kepler.toml, found from a folder upwards as git finds .git."""

from __future__ import annotations

from pathlib import Path

import pytest

from kepler.project_file import PROJECT_FILE, find_project_file


def test_found_in_the_folder_and_from_any_subfolder(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text('[project]\nname = "p"\n', encoding="utf-8")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_file(tmp_path) == (tmp_path / PROJECT_FILE).resolve()
    assert find_project_file(deep) == (tmp_path / PROJECT_FILE).resolve()


def test_the_nearest_wins(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    for folder in (tmp_path, inner):
        (folder / PROJECT_FILE).write_text("", encoding="utf-8")
    assert find_project_file(inner / ".") == (inner / PROJECT_FILE).resolve()


def test_the_working_directory_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / PROJECT_FILE).write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_project_file() == (tmp_path / PROJECT_FILE).resolve()


def test_none_outside_a_project_and_a_folder_named_like_the_file_does_not_count(tmp_path: Path) -> None:
    assert find_project_file(tmp_path) is None, "a kepler.toml above pytest's temporary folders"
    (tmp_path / PROJECT_FILE).mkdir()  # a folder, not the settings file
    assert find_project_file(tmp_path) is None

"""A Kepler project: a git repository with kepler.toml at its root and the .kepler/ store beside it."""

from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.errors import ProjectNotFoundError, VersioningError
from kepler.project_file import PROJECT_FILE, find_project_file
from kepler.versioning import gitrepo
from kepler.versioning.store import RecordStore

STORE = ".kepler"
DVC_REMOTE_NAME = "kepler-local"
_STORE_GITIGNORE = (
    "/mlflow.db\n/mlflow.db-journal\n/mlartifacts/\n/dvc-remote/\n/bentoml/\n/locks/\n/cache/\n"
)
_DEFAULT_CONFIG = """# Kepler project settings. Paths are relative to this file.
[project]
name = "{name}"

[mlflow]
# MLFLOW_TRACKING_URI overrides this; a server URL (http://...) scales it out.
tracking_uri = "sqlite:///.kepler/mlflow.db"
artifact_root = ".kepler/mlartifacts"

[dvc]
# Any DVC remote URL (s3://..., gs://...) replaces the local folder.
remote_url = ".kepler/dvc-remote"

[bentoml]
home = ".kepler/bentoml"

# What `kepler build` reads when it is given no table (data is relative to this file):
# [build]
# data = "data/table.csv"
# label = "failure"
# use_case = "predictive_maintenance"
"""


@dataclass
class Project:
    """An opened Kepler project.

    Attributes:
        root: The project folder (the git work tree's root for a new project).
        config: The parsed ``kepler.toml``.
    """

    root: Path
    config: dict[str, Any] = field(default_factory=dict)

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        root = find_root(Path(path))
        self.root = root
        self.config = _read_config(root / PROJECT_FILE)

    @property
    def name(self) -> str:
        """The project's name from kepler.toml."""
        return str(self.config.get("project", {}).get("name", self.root.name))

    @property
    def store(self) -> RecordStore:
        """Kepler's JSON records of this project."""
        return RecordStore(self.root)

    def resolve(self, value: str) -> str:
        """A config path made absolute against the project root (URLs are left as they are)."""
        if "://" in value:
            return value
        return str((self.root / value).resolve())

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: ``MLFLOW_TRACKING_URI``, else kepler.toml, else the embedded SQLite file."""
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        uri = str(self.config.get("mlflow", {}).get("tracking_uri", "sqlite:///.kepler/mlflow.db"))
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str((self.root / uri[len("sqlite:///") :]).resolve())
        return uri

    @property
    def artifact_root(self) -> str:
        """Where MLflow stores run artifacts for new experiments."""
        return Path(
            self.resolve(str(self.config.get("mlflow", {}).get("artifact_root", ".kepler/mlartifacts")))
        ).as_uri()

    @property
    def dvc_remote_url(self) -> str:
        """The DVC remote URL (a local folder by default)."""
        return self.resolve(str(self.config.get("dvc", {}).get("remote_url", ".kepler/dvc-remote")))

    @property
    def bentoml_home(self) -> Path:
        """The BentoML store of this project."""
        return Path(self.resolve(str(self.config.get("bentoml", {}).get("home", ".kepler/bentoml"))))

    def relative(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to the project root.

        Raises:
            VersioningError: the path lies outside the project.
        """
        absolute = (Path.cwd() / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        try:
            return absolute.relative_to(self.root.resolve())
        except ValueError:
            raise VersioningError(
                f"{path} is outside the project {self.root}; move the file into the project"
            ) from None

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:  # removed since find_root saw it
        raise _not_a_project(path.parent) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise VersioningError(f"{path}: unreadable project settings ({exc}); fix the file") from None


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds kepler.toml, as git finds .git.

    Raises:
        ProjectNotFoundError: none up to the filesystem root.
    """
    found = find_project_file(start)
    if found is None:
        raise _not_a_project(start)
    return found.parent


def _not_a_project(folder: Path) -> ProjectNotFoundError:
    """The one error for a folder outside every Kepler project."""
    return ProjectNotFoundError(
        f"{folder.resolve()} is not inside a Kepler project; run `kepler init` to create one"
    )


def current(project: Project | None = None) -> Project:
    """The project to work in: ``project`` when given, else the one that contains the working directory.

    Every function that takes ``project=None`` resolves it here, so they all find the same project and
    fail with the same message.

    Raises:
        ProjectNotFoundError: no project was given and no kepler.toml lies at or above the working
            directory.
    """
    return project if project is not None else Project(Path.cwd())


def init(path: str | os.PathLike[str] = ".", *, name: str | None = None) -> Project:
    """Creates (or completes) a Kepler project: git init where needed, dvc init, kepler.toml, .kepler/.

    Running it again on a project changes nothing.
    """
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not gitrepo.is_repo(root):
        gitrepo.git(root, "init", "-q")
    gitrepo.ensure_identity(root)
    config = root / PROJECT_FILE
    store = root / STORE
    (store / "records").mkdir(parents=True, exist_ok=True)
    ignore = store / ".gitignore"
    if not ignore.exists():
        atomic_files.write_text(ignore, _STORE_GITIGNORE)
    if not config.exists():
        atomic_files.write_text(config, _DEFAULT_CONFIG.format(name=name or root.name))
    project = Project(root)
    _init_dvc(project)
    _ignore_builds(root)
    (store / "records" / ".keep").touch()
    gitrepo.commit(root, [config, ignore, store / "records" / ".keep", *_dvc_files(root)], "kepler init")
    return project


@contextlib.contextmanager
def quiet_dvc() -> Iterator[None]:
    """Silences DVC's informational messages (its init greeting, progress notes) while inside."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _dvc_files(root: Path) -> list[Path]:
    files = (root / ".dvc" / "config", root / ".dvc" / ".gitignore", root / ".dvcignore", root / ".gitignore")
    return [p for p in files if p.exists()]


def _ignore_builds(root: Path) -> None:
    """Build folders are outputs (their artifacts live in MLflow and their records in .kepler): keep them out of git."""
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if "/builds/" not in lines:
        atomic_files.write_text(ignore, "\n".join([*lines, "/builds/"]) + "\n")


def _init_dvc(project: Project) -> None:
    from dvc.repo import Repo

    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    if not (project.root / ".dvc").is_dir():
        with quiet_dvc():
            Repo.init(str(project.root))
    repo = Repo(str(project.root))
    url = project.dvc_remote_url
    if "://" not in url:
        # DVC reads a relative path against the working directory and stores it relative to .dvc/,
        # so a clone elsewhere still finds the remote inside the project.
        url = os.path.relpath(url, Path.cwd())
    try:
        with repo.config.edit() as conf:
            conf["remote"][DVC_REMOTE_NAME] = {"url": url}
            conf["core"]["remote"] = DVC_REMOTE_NAME
            conf["core"]["analytics"] = False
    finally:
        repo.close()
    Path(project.dvc_remote_url).mkdir(
        parents=True, exist_ok=True
    ) if "://" not in project.dvc_remote_url else None

"""A Kepler project: a git repository with kepler.toml at its root and the .kepler/ store beside it."""

from __future__ import annotations

import contextlib
import logging
import os
import re
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
DVC_REMOTE_NAME = "kepler-local"  # the local folder
DVC_CLOUD_REMOTE_NAME = "kepler"  # any remote URL (s3://, gs://...)
# .*.tmp: the temporary file of a record write that was killed before its rename (the next write of that record
# removes it; until then git must not show it).
_STORE_GITIGNORE = (
    "/mlflow.db\n/mlflow.db-journal\n/mlartifacts/\n/dvc-remote/\n/bentoml/\n/locks/\n/cache/\n.*.tmp\n"
)
_DEFAULT_CONFIG = """# Kepler project settings. Paths are relative to this file. No credentials here: Kepler reads them from the
# environment (AWS_* or AWS_PROFILE; MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN; PGPASSWORD).
[project]
name = "{name}"

[tracking]
# The MLflow tracking store. Unset: the embedded SQLite file .kepler/mlflow.db, or MLFLOW_TRACKING_URI when
# that is set. Set (kepler init --tracking-uri URL), it wins over MLFLOW_TRACKING_URI.
# uri = "http://mlflow.example.com:5000"
# Where Kepler writes run artifacts itself (no server; a tracking server keeps its own):
# artifact_root = ".kepler/mlartifacts"

[dvc]
# Any DVC remote URL (s3://..., gs://...) replaces the local folder (kepler init --remote s3://bucket/prefix).
remote_url = ".kepler/dvc-remote"

# An S3-compatible endpoint (MinIO, Ceph...) for the s3:// URLs above (kepler init --remote-endpoint URL):
# [s3]
# endpoint_url = "http://127.0.0.1:9000"

[bentoml]
home = ".kepler/bentoml"

# What `kepler build` reads when it is given no table (data is relative to this file):
# [build]
# data = "data/table.csv"
# label = "failure"
# use_case = "predictive_maintenance"
"""
DEFAULT_TRACKING_URI = "sqlite:///.kepler/mlflow.db"
# mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI (for subprocesses): once Kepler has recorded to one project's
# store, the variable names it. The stores projects named themselves are kept here, so that the variable counts as
# the user's choice only when it holds something else (or what the shell gave this process).
_PROJECT_URIS: set[str] = set()
_SHELL_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")
DEFAULT_ARTIFACT_ROOT = ".kepler/mlartifacts"
DEFAULT_DVC_REMOTE = ".kepler/dvc-remote"
REMOTE_DVC_FOLDER = "dvc"  # kepler init --remote s3://bucket/prefix: DVC under prefix/dvc,
REMOTE_MLFLOW_FOLDER = "mlflow"  # MLflow's artifacts (without a server) under prefix/mlflow


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

    def setting(self, table: str, key: str) -> str | None:
        """A text value of kepler.toml (``[table] key``), or None when unset.

        Raises:
            VersioningError: the value is not text.
        """
        section = self.config.get(table, {})
        value = section.get(key) if isinstance(section, dict) else None
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise VersioningError(f"{self.root / PROJECT_FILE}: [{table}] {key} must be a non-empty string")
        return value.strip()

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI every Kepler record goes to: the one place Kepler decides it.

        ``[tracking] uri`` of kepler.toml when set (a project that names its store always records there, whatever
        the shell says); else ``MLFLOW_TRACKING_URI``; else the older ``[mlflow] tracking_uri``; else the embedded
        SQLite file. Reading it also bounds MLflow's HTTP retries and points MLflow's S3 client at ``[s3]
        endpoint_url`` (:func:`kepler.versioning.endpoints.configure_mlflow`).
        """
        from kepler.versioning.endpoints import configure_mlflow

        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env in _PROJECT_URIS and env != _SHELL_TRACKING_URI:
            env = None  # mlflow.set_tracking_uri copied another project's store there: not the user's choice
        configured = self.setting("tracking", "uri")
        uri = configured or env or self.setting("mlflow", "tracking_uri") or DEFAULT_TRACKING_URI
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            uri = "sqlite:///" + str((self.root / uri[len("sqlite:///") :]).resolve())
        if configured or not env:
            _PROJECT_URIS.add(uri)
        configure_mlflow(self.s3_endpoint)
        return uri

    @property
    def tracking_server(self) -> bool:
        """True when the tracking URI is a server (http or https)."""
        from kepler.versioning.endpoints import is_server

        return is_server(self.tracking_uri)

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments keep their artifacts, or None to leave it to the tracking server.

        ``[tracking] artifact_root`` when set (a path, or a URL such as ``s3://bucket/prefix/mlflow``). Otherwise
        a tracking server decides (its ``--artifacts-destination``), and without one Kepler writes them itself
        under ``[mlflow] artifact_root`` (older projects) or ``.kepler/mlartifacts``.
        """
        root = self.setting("tracking", "artifact_root")
        if root is None:
            if self.tracking_server:
                return None
            root = self.setting("mlflow", "artifact_root") or DEFAULT_ARTIFACT_ROOT
        return root if "://" in root else Path(self.resolve(root)).as_uri()

    @property
    def dvc_remote_url(self) -> str:
        """The DVC remote URL (a local folder by default)."""
        return self.resolve(self.setting("dvc", "remote_url") or DEFAULT_DVC_REMOTE)

    @property
    def s3_endpoint(self) -> str | None:
        """The S3-compatible endpoint of the project's s3:// URLs (``[s3] endpoint_url``), or None for AWS."""
        return self.setting("s3", "endpoint_url")

    def mlflow_client(self) -> Any:
        """An MLflow client on the project's tracking store, for both runs and the model registry."""
        from mlflow import MlflowClient

        uri = self.tracking_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

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


def init(
    path: str | os.PathLike[str] = ".",
    *,
    name: str | None = None,
    tracking_uri: str | None = None,
    remote: str | None = None,
    remote_endpoint: str | None = None,
) -> Project:
    """Creates (or completes) a Kepler project: git init where needed, dvc init, kepler.toml, .kepler/.

    Running it again on a project changes nothing; running it with settings changes those settings (in
    kepler.toml and the DVC config, committed) and nothing else.

    Args:
        path: The project folder (created if missing).
        name: The project's name (default: the folder's name).
        tracking_uri: The MLflow tracking store every record goes to (``[tracking] uri``): a tracking server
            (``http://mlflow:5000``, which then keeps the artifacts where its ``--artifacts-destination`` says) or
            a database URI. Default: the embedded SQLite file.
        remote: Where data and artifacts go. ``s3://bucket/prefix`` makes ``s3://bucket/prefix/dvc`` the DVC
            remote and, unless the tracking store is a server, ``s3://bucket/prefix/mlflow`` the MLflow artifact
            root; any other DVC remote URL (or a folder) becomes the DVC remote as it is.
        remote_endpoint: An S3-compatible endpoint for s3:// URLs (``[s3] endpoint_url``; DVC's ``endpointurl``
            and MLflow's ``MLFLOW_S3_ENDPOINT_URL``).

    Raises:
        VersioningError: a URL holding a password (credentials come from the environment only), a bad S3 URL, or
            an endpoint without an s3:// remote.
    """
    settings = _checked_settings(tracking_uri, remote, remote_endpoint)
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
    if settings:
        _write_settings(config, settings)
    project = Project(root)
    _init_dvc(project)
    _ignore_builds(root)
    (store / "records" / ".keep").touch()
    message = "kepler init" + (f": {', '.join(sorted(settings))}" if settings else "")
    gitrepo.commit(root, [config, ignore, store / "records" / ".keep", *_dvc_files(root)], message)
    return project


def _checked_settings(
    tracking_uri: str | None, remote: str | None, remote_endpoint: str | None
) -> dict[str, str]:
    """The settings ``kepler init`` was given, checked before anything is written."""
    from urllib.parse import urlsplit

    from kepler.versioning.endpoints import check_no_secret, s3_location

    settings: dict[str, str] = {}
    for key, value in (
        ("tracking_uri", tracking_uri),
        ("remote", remote),
        ("remote_endpoint", remote_endpoint),
    ):
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise VersioningError(f"{key.replace('_', ' ')} must be a non-empty string, got {value!r}")
        settings[key] = check_no_secret(value.strip(), key.replace("_", " "))
    if "remote" in settings and settings["remote"].startswith("s3:"):
        s3_location(settings["remote"])
    endpoint = settings.get("remote_endpoint")
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VersioningError(
                f"remote endpoint {endpoint!r} is not an http(s) URL; give the S3 endpoint, "
                f"e.g. --remote-endpoint http://127.0.0.1:9000"
            )
    return settings


def _write_settings(config: Path, settings: dict[str, str]) -> None:
    """Writes ``kepler init``'s settings into kepler.toml (atomically, keeping every other line)."""
    from kepler.versioning.endpoints import is_server

    text = config.read_text(encoding="utf-8")
    current = _read_config(config)
    uri = settings.get("tracking_uri")
    if uri is not None:
        # A server keeps the artifacts where its --artifacts-destination says: drop a root written for no server.
        text = set_toml_values(
            text, "tracking", {"uri": uri, **({"artifact_root": None} if is_server(uri) else {})}
        )
    tracking = current.get("tracking", {})
    server = is_server(
        uri if uri is not None else str(tracking.get("uri", "") if isinstance(tracking, dict) else "")
    )
    remote = settings.get("remote")
    if remote is not None:
        if remote.startswith("s3:"):
            base = remote.rstrip("/")
            text = set_toml_values(text, "dvc", {"remote_url": f"{base}/{REMOTE_DVC_FOLDER}"})
            if not server:
                text = set_toml_values(text, "tracking", {"artifact_root": f"{base}/{REMOTE_MLFLOW_FOLDER}"})
        else:
            text = set_toml_values(text, "dvc", {"remote_url": remote})
    endpoint = settings.get("remote_endpoint")
    if endpoint is not None:
        dvc = tomllib.loads(text).get("dvc", {})
        if not str(dvc.get("remote_url", "") if isinstance(dvc, dict) else "").startswith("s3:"):
            raise VersioningError(
                "--remote-endpoint applies to an s3:// remote; give --remote s3://bucket/prefix with it"
            )
        text = set_toml_values(text, "s3", {"endpoint_url": endpoint})
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - set_toml_values writes valid TOML
        raise VersioningError(
            f"{config}: the settings would not be valid TOML ({exc}); edit the file"
        ) from None
    atomic_files.write_text(config, text)


def set_toml_values(text: str, table: str, values: dict[str, str | None]) -> str:
    """``text`` (a TOML document) with ``[table] key = value`` set, or removed where the value is None.

    Only the lines of those keys change (comments and every other line stay); a missing table is added at the end,
    a missing key right under its table's header.
    """
    import json

    lines = text.splitlines()
    header = re.compile(rf"\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        added = [f"{key} = {json.dumps(value)}" for key, value in values.items() if value is not None]
        if not added:
            return text
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join([*lines, "", f"[{table}]", *added]) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
    for key, value in values.items():
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        if value is None:
            if found is not None:
                del lines[found]
                end -= 1
        elif found is not None:
            lines[found] = f"{key} = {json.dumps(value)}"  # a JSON string is a TOML basic string
        else:
            lines.insert(start + 1, f"{key} = {json.dumps(value)}")
            end += 1
    return "\n".join(lines) + "\n"


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
    remote: dict[str, Any] = {}
    if "://" not in url:
        # DVC reads a relative path against the working directory and stores it relative to .dvc/,
        # so a clone elsewhere still finds the remote inside the project.
        remote["url"] = os.path.relpath(url, Path.cwd())
        name = DVC_REMOTE_NAME
    else:
        remote["url"] = url
        name = DVC_CLOUD_REMOTE_NAME
        if url.startswith("s3:") and project.s3_endpoint:
            remote["endpointurl"] = project.s3_endpoint
    try:
        with repo.config.edit() as conf:
            for other in (DVC_REMOTE_NAME, DVC_CLOUD_REMOTE_NAME):
                if other != name:
                    conf["remote"].pop(other, None)
            conf["remote"][name] = remote
            conf["core"]["remote"] = name
            conf["core"]["analytics"] = False
    finally:
        repo.close()
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True)

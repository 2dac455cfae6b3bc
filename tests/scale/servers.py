"""Real engines for the scale-out tests, started by the tests: a PostgreSQL server (initdb and pg_ctl in a folder under
pytest's base folder), moto's S3 server, and ``mlflow server`` on PostgreSQL with its artifacts on that S3.

One set per test session (per xdist worker), shared by the test files; the fault tests start their own moto and
MLflow server, which they stop. Each engine skips its tests only where it cannot run here, naming the command that
failed (``initdb`` missing, PostgreSQL refusing to start); a moto or MLflow server that is installed but does not come
up fails the tests instead, with its log. Every process started here is stopped by its own id.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
BUCKET = "kepler"
# Dummy credentials: moto accepts any. The secret is unique per session so a test can grep every file for it.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "kepler-test-key",
    "AWS_SECRET_ACCESS_KEY": f"kepler-test-secret-{uuid.uuid4().hex}",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_TIMEOUT_S = 120  # a loaded 2-core machine took 36 s to start `mlflow server`


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Process:
    """A server process started by a test (in its own process group), with its log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    command: list[str] = field(default_factory=list)
    ready: Callable[[], bool] = lambda: True

    def wait_ready(self) -> None:
        """Waits until the server answers; fails with its log if it exits or stays silent for START_TIMEOUT_S."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if self.process.poll() is not None:
                pytest.fail(
                    f"`{' '.join(self.command)}` exited with {self.process.returncode}:\n{_tail(self.log)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"`{' '.join(self.command)}` did not answer within {START_TIMEOUT_S} s:\n{_tail(self.log)}"
                )
            time.sleep(0.1)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the process and its children (its process group, made at start), by their ids."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        else:  # the leader is gone; its children (uvicorn under `mlflow server`) may not be
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """Kills the server at once, as a crash would."""
        self.stop(signal.SIGKILL)


def _start(
    name: str, command: list[str], env: dict[str, str], folder: Path, ready: Callable[[], bool], wait: bool
) -> Process:
    """Starts ``command`` in its own process group and, with ``wait``, waits until ``ready()`` (Process.wait_ready)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    log = folder / f"{name}.log"
    handle = log.open("wb")
    env = {**env, "TMPDIR": str(folder / "tmp")}  # its temporary files stay in its folder
    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True
    )
    handle.close()
    started = Process(name=name, url="", process=process, log=log, command=command, ready=ready)
    if wait:
        started.wait_ready()
    return started


def _answers(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status < 500)
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    return ready


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """A PostgreSQL server on 127.0.0.1 (trust authentication for the user ``kepler``)."""

    port: int
    data: Path
    prefix: list[str]
    pg_ctl: str
    user: str = "kepler"
    restored: list[tuple[Path, int]] = field(default_factory=list)

    def uri(self, database: str) -> str:
        """An SQLAlchemy URI of ``database`` (psycopg2: SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates a database; returns its URI."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)

    def query(self, database: str, sql: str, *args: object) -> list[tuple[object, ...]]:
        """The rows of one query."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def stop(self) -> None:
        """Stops the server: an immediate shutdown (SIGQUIT to the postmaster, by the id in postmaster.pid).

        Signalled by its id rather than with ``pg_ctl stop``, which as ``nobody`` needs the path to the data folder,
        and another pytest session starting meanwhile makes pytest's base folder private again.
        """
        try:
            pid = int((self.data / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    if not _running(pid):
                        break
                    time.sleep(0.05)
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path, mode in reversed(self.restored):
            path.chmod(mode)


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs. A zombie does not: the postmaster, daemonized by pg_ctl, is reaped by init,
    which here took over a second after its exit."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel whether the id exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _skip_failed(command: list[str], done: subprocess.CompletedProcess[str]) -> None:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    pytest.skip(
        f"`{' '.join(command)}` failed ({lines[-1] if lines else done.returncode}): no PostgreSQL here"
    )


def start_postgres(folder: Path, private: Path) -> Postgres:
    """initdb and pg_ctl start in ``folder`` (as ``nobody`` when running as root: PostgreSQL refuses root).

    ``private`` is this process's own part of pytest's base folder: folders below it get their modes back when the
    server stops; those above it are shared by the xdist workers and keep the search bit (pytest makes its base
    folder private again when it next starts).
    """
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "initdb/pg_ctl not found (shutil.which('initdb') is None, no /usr/lib/postgresql/*/bin/initdb); "
            ".ci/run installs Debian's postgresql where it can"
        )
    folder.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    restored: list[tuple[Path, int]] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and `runuser` is missing: PostgreSQL refuses to run as root")
        import pwd

        nobody = pwd.getpwnam("nobody")
        prefix = [runuser, "-u", "nobody", "--"]
        # pytest's base folder is private to root (0700): let nobody pass through (search only, no listing),
        # and put the modes back when the server stops.
        for parent in [folder, *folder.parents]:
            mode = stat.S_IMODE(parent.stat().st_mode)
            if not mode & stat.S_IXOTH:
                if parent.is_relative_to(private):
                    restored.append((parent, mode))
                parent.chmod(mode | stat.S_IXOTH)
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    data = folder / "data"
    command = [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "kepler", "-E", "UTF8", "--no-sync"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        for path, mode in reversed(restored):
            path.chmod(mode)
        _skip_failed(command, done)
    port = free_port()
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections=60"
    )
    command = [
        *prefix,
        pg_ctl,
        "-D",
        str(data),
        "-l",
        str(folder / "postgres.log"),
        "-w",
        "-t",
        "60",
        "-o",
        options,
        "start",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    server = Postgres(port=port, data=data, prefix=prefix, pg_ctl=pg_ctl, restored=restored)
    if done.returncode != 0:
        server.stop()
        _skip_failed(command, done)
    return server


# --------------------------------------------------------------------------- moto's S3 server


def start_s3(folder: Path, wait: bool = True) -> Process:
    """moto's S3 server on a free loopback port, with the bucket ``kepler``.

    With ``wait=False`` it returns at once (its URL is known): :func:`s3_ready` then waits and makes the bucket,
    so that an ``mlflow server`` on it can start meanwhile.
    """
    moto = BIN / "moto_server"
    if not moto.exists():
        pytest.skip(f"{moto} is missing: install the test extra (moto[server])")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(
        "moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)], {**os.environ}, folder, _answers(url), False
    )
    server.url = url
    if wait:
        s3_ready(server)
    return server


def s3_ready(server: Process) -> None:
    """Waits until moto's server answers, then makes the bucket ``kepler``."""
    server.wait_ready()
    import boto3

    boto3.client("s3", endpoint_url=server.url, **_boto_credentials()).create_bucket(Bucket=BUCKET)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


def s3_client(endpoint: str) -> object:
    """A boto3 S3 client on ``endpoint`` with the tests' credentials."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())


def s3_keys(endpoint: str, prefix: str) -> list[str]:
    """Every key of the bucket under ``prefix``."""
    client = s3_client(endpoint)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):  # type: ignore[attr-defined]
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


# --------------------------------------------------------------------------- mlflow server


def start_mlflow(
    folder: Path,
    backend_uri: str,
    s3_url: str,
    artifacts: str,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
) -> Process:
    """``mlflow server`` on ``backend_uri`` with artifacts proxied to ``artifacts`` (an s3:// URL) at ``s3_url``.

    With ``wait=False`` it returns at once; ``wait_ready()`` waits for it (S3 need not answer before then).
    """
    mlflow = BIN / "mlflow"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **AWS_ENV,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        # MLflow 3 starts a job runner with seven worker processes by default: nothing here needs jobs.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **(extra_env or {}),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        str(mlflow),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        artifacts,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = _start("mlflow", command, env, folder, _answers(url + "/health"), wait)
    server.url = url
    return server


@dataclass
class Services:
    """The session's shared engines.

    Attributes:
        postgres: The PostgreSQL server.
        s3: moto's S3 server (bucket ``kepler``).
        tracking: ``mlflow server`` on PostgreSQL database ``mlflow``, artifacts under ``s3://kepler/mlflow``.
    """

    postgres: Postgres
    s3: Process
    tracking: Process
    database: str = "mlflow"


# --------------------------------------------------------------------------- fixtures (conftest.py exposes them)


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[dict[str, str]]:
    """The dummy AWS credentials in the environment (Kepler, DVC and boto3 read them from there only)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        yield dict(AWS_ENV)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """The session's PostgreSQL server."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"), tmp_path_factory.getbasetemp())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory, aws_credentials: dict[str, str]) -> Iterator[Process]:
    """The session's moto S3 server."""
    server = start_s3(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, s3_server: Process
) -> Iterator[Services]:
    """PostgreSQL, moto's S3 and ``mlflow server`` on both, for the whole session."""
    backend = postgres.create_database("mlflow")
    tracking = start_mlflow(
        tmp_path_factory.mktemp("mlflow"), backend, s3_server.url, f"s3://{BUCKET}/mlflow"
    )
    try:
        yield Services(postgres=postgres, s3=s3_server, tracking=tracking)
    finally:
        tracking.kill()  # nothing of it is kept: no graceful shutdown (a second of uvicorn's) to wait for

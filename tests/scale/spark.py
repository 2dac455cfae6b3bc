"""A ``local[2]`` Spark session for the scale-out tests: offline, quiet, its UI off and every file it writes under
pytest's base folder.

Module-scoped, and the tests that need it are one module (test_spark.py), so the suite starts one JVM (about 15 CPU
seconds with its first Python worker). At the module's end the JVM itself exits and the py4j threads end with it: a
fork later in the same worker process (a search's child, multiprocessing) inherits no lock they hold.

Skips (naming the failing command) only where Spark cannot start here: no Java runtime, or no pyspark.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

MASTER = "local[2]"
# Set before the JVM starts, restored when the session stops: workers run this Python, and Spark binds to the
# loopback interface (no lookup of the host's name, nothing reachable from outside).
_ENVIRONMENT = {
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    "SPARK_LOCAL_IP": "127.0.0.1",
    "SPARK_LOCAL_HOSTNAME": "localhost",
}


def _java_problem() -> str | None:
    """Why ``java -version`` cannot run here, or None when it can."""
    java = (
        shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin"))
        if os.environ.get("JAVA_HOME")
        else None
    )
    java = java or shutil.which("java")
    if java is None:
        return "`java -version` failed: no Java runtime on PATH or in JAVA_HOME (apt-get install openjdk-17-jre-headless)"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"`{java} -version` failed: {(done.stderr or done.stdout).strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The module's ``local[2]`` SparkSession (its JVM stopped at the module's end; tests must not stop it)."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip(
            "`python -c 'import pyspark'` failed: install the spark extra (pip install 'kepler-ml[spark]')"
        )
    problem = _java_problem()
    if problem:
        pytest.skip(problem)
    from pyspark.sql import SparkSession

    root = tmp_path_factory.mktemp("spark")
    for folder in ("local", "tmp", "warehouse"):
        (root / folder).mkdir()
    saved = {name: os.environ.get(name) for name in _ENVIRONMENT}
    os.environ.update(_ENVIRONMENT)
    java_options = f"-Djava.io.tmpdir={root / 'tmp'} -Dlog4j2.level=ERROR"
    session = (
        SparkSession.builder.master(MASTER)
        .appName("kepler-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(root / "local"))
        .config("spark.sql.warehouse.dir", str(root / "warehouse"))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.executor.extraJavaOptions", java_options)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        _stop_jvm(session)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_jvm(session: Any) -> None:
    """Stops the session, then its JVM and the py4j threads; fails, naming them, if a py4j thread is left.

    ``session.stop()`` alone keeps the JVM and py4j's threads for the next session of the process (pyspark's class
    attributes ``SparkContext._gateway``/``_jvm``). The JVM (spark-submit) exits when its stdin closes, as it does
    when the driver dies; with both attributes cleared, a later session starts a new JVM.
    """
    from pyspark import SparkContext

    flaml_spark = sys.modules.get("flaml.automl.spark")
    if flaml_spark is not None and hasattr(flaml_spark, "restore_spark_ansi_mode"):
        # FLAML's import turned Spark's ANSI mode off and restores it at exit, through a JVM that will be gone
        # then (a logged ConnectionRefusedError): restore it now.
        atexit.unregister(flaml_spark.restore_spark_ansi_mode)
        flaml_spark.restore_spark_ansi_mode(flaml_spark.spark, flaml_spark.ansi_conf, flaml_spark.adjusted)
    gateway = SparkContext._gateway
    session.stop()
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # spark-submit's JVM, started by pyspark for this process
            process.wait(timeout=15)
    SparkContext._gateway = None
    SparkContext._jvm = None
    # py4j's finalizer thread sees the shutdown on its next poll (about a second).
    left = [thread for thread in threading.enumerate() if type(thread).__module__.startswith("py4j")]
    for thread in left:
        thread.join(timeout=10)
    alive = [f"{thread.name} ({type(thread).__name__})" for thread in left if thread.is_alive()]
    if alive:
        pytest.fail(f"py4j threads still run after the JVM stopped: {', '.join(alive)}", pytrace=False)

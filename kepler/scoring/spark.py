"""Scoring on Spark: the master checked first, the artifact broadcast with the job, ``mapInPandas`` with one
onnxruntime session per Python worker (:mod:`kepler.scoring.worker`), the output folder renamed into place.

A wrong or unreachable master fails within seconds with one line naming it: the URL's form is checked, then
a ``spark://`` or ``k8s://`` master's port is tried with a short timeout before Spark is started, and a master
that accepts the application but runs no task fails after :data:`PROBE_TIMEOUT_S`.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kepler.errors
from kepler.errors import KeplerError
from kepler.runtimes.artifact import MANIFEST_NAME
from kepler.scoring.frames import MODEL_ID, MODEL_SHA256, PREDICTION, PROBA_PREFIX, SCORE
from kepler.scoring.model import ScoringModel
from kepler.scoring.tables import (
    CSV,
    InputTable,
    check_columns,
    partial_path,
    put_in_place,
    remove_partial,
    table_format,
)
from kepler.scoring.worker import ShippedArtifact, score_partitions

CONNECT_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 60.0
_MASTER = re.compile(
    r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^/\s]+|yarn|k8s://\S+|mesos://\S+)$"
)
_KEPLER_ERROR = re.compile(r"kepler\.errors\.(\w+): (.+)")
_RAISED = re.compile(r"^((?:[\w.]+\.)?\w+(?:Error|Exception): .+)$", re.MULTILINE)


def check_master(master: str) -> None:
    """Refuses a master URL Spark cannot use, and a ``spark://`` or ``k8s://`` master no port answers at.

    Raises:
        KeplerError: names the master and what to check.
    """
    if not _MASTER.match(master):
        raise KeplerError(
            f"Spark master {master!r} is not a master URL; use local[N], spark://HOST:PORT, yarn or "
            f"k8s://https://HOST:PORT"
        )
    endpoints = _endpoints(master)
    if not endpoints:
        return
    last = ""
    for host, port in endpoints:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            last = f"{host}:{port} ({reason.lower()})"
    raise KeplerError(
        f"Spark master {master} cannot be reached at {last} within {CONNECT_TIMEOUT_S:g} s; check the URL "
        f"(the master's web UI shows it), that the master runs, and that this machine may reach its port"
    )


def _endpoints(master: str) -> list[tuple[str, int]]:
    """The host:port pairs to try for a master (none for local, yarn and mesos masters)."""
    if master.startswith("spark://"):
        pairs = []
        for part in master[len("spark://") :].split(","):
            host, _, port = part.rpartition(":")
            pairs.append((host.strip("[]") or part, int(port) if port.isdigit() else 7077))
        return pairs
    if master.startswith("k8s://"):
        url = urlsplit(master[len("k8s://") :] if "://" in master[6:] else "https://" + master[6:])
        return [(url.hostname or "", url.port or 443)]
    return []


def session_for(spark: Any) -> tuple[Any, bool]:
    """The Spark session to score on: the one given, this process's active one for the same master, or a new one.

    Returns:
        ``(session, made)``: ``made`` is True when this call started the session (the caller stops it).

    Raises:
        KeplerError: pyspark is not installed, Java cannot start, the master is wrong or unreachable, or another
            master's session is already active in this process.
    """
    if not isinstance(spark, str):
        return spark, False
    master = spark.strip()
    check_master(master)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise KeplerError(
            "scoring on Spark needs pyspark; install it with `pip install 'kepler-ml[spark]'`"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if running != master:
            raise KeplerError(
                f"a Spark session for master {running} is already active in this process; pass that session "
                f"(spark=session), or stop it before scoring on {master}"
            )
        return active, False
    if master.startswith("local"):
        # Local workers must run this Python, which has Kepler; a cluster's workers need Kepler installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        session = (
            SparkSession.builder.master(master)
            .appName("kepler-score")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
    except Exception as exc:  # pyspark raises its own error types, Java ones through py4j
        text = str(exc)
        if "JAVA_GATEWAY_EXITED" in text or "Java gateway" in text or "JAVA_HOME" in text:
            raise KeplerError(
                f"Spark could not start its JVM for master {master}; install Java 17 (`java -version` must "
                f"work) or set JAVA_HOME"
            ) from None
        raise KeplerError(
            f"Spark master {master} did not accept the application ({_first_line(text)}); check that the URL "
            f"is the master's (its web UI shows it) and the master's log"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    if not master.startswith("local"):
        _probe(session, master)
    return session, True


def _probe(session: Any, master: str) -> None:
    """Runs one tiny task; a master that accepts the application but runs nothing fails here, not hours later."""
    context = session.sparkContext
    failure: list[BaseException] = []

    def run() -> None:
        try:
            context.parallelize([0], 1).count()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    if thread.is_alive() or failure:
        context.cancelAllJobs()
        session.stop()
        why = f"ran no task within {PROBE_TIMEOUT_S:g} s" if not failure else _first_line(str(failure[0]))
        raise KeplerError(
            f"Spark master {master} accepted the application but {why}; check that it has workers with "
            f"free cores and memory, and that they can reach this driver"
        )


def ship(model: ScoringModel, keep: Sequence[str], *, threads: int, text_input: bool) -> ShippedArtifact:
    """The artifact's files as the job carries them, the model's bytes verified against its manifest once more
    (the bytes read here are the bytes shipped).

    Raises:
        ArtifactError: the model file changed since it was opened.
    """
    from kepler.errors import ArtifactError

    artifact = model.artifact
    files = {
        artifact.manifest.model_file: artifact.model_path.read_bytes(),
        MANIFEST_NAME: (artifact.path / MANIFEST_NAME).read_bytes(),
    }
    import hashlib

    if hashlib.sha256(files[artifact.manifest.model_file]).hexdigest() != model.sha256:
        raise ArtifactError(
            f"{artifact.model_path}: the model file changed since it was verified; score again"
        )
    return ShippedArtifact(
        files=files,
        model_file=artifact.manifest.model_file,
        sha256=model.sha256,
        model_id=model.model_id,
        keep=tuple(keep),
        threads=threads,
        text_input=text_input,
        job=uuid.uuid4().hex,
    )


def read_input(session: Any, table: InputTable | str) -> tuple[Any, str]:
    """The input as a Spark DataFrame: Parquet as typed, CSV as text (numbers are parsed on the executors, as
    pandas reads them).

    Returns:
        ``(frame, format)``.
    """
    if isinstance(table, InputTable):
        paths = [str(p.resolve()) for p in table.files]
        kind = table.format
    else:
        paths = [table]
        kind = table_format(table.rstrip("/")) or "parquet"
    reader = session.read
    try:
        if kind == CSV:
            frame = reader.options(header=True, inferSchema=False, mode="FAILFAST", encoding="UTF-8").csv(
                paths
            )
        else:
            frame = reader.parquet(*paths)
    except Exception as exc:  # AnalysisException and friends
        raise kepler.errors.DataError(
            f"{paths[0]}: Spark cannot read the input ({_first_line(str(exc))}); check the path"
        ) from None
    return frame, kind


def output_schema(model: ScoringModel, frame: Any, keep: Sequence[str]) -> Any:
    """The Spark schema of the rows the workers return: the kept columns' own types, then the model's outputs
    (the model's id and sha256 are added after, as constant columns)."""
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        FloatType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    kinds = {
        "tensor(float)": FloatType(),
        "tensor(double)": DoubleType(),
        "tensor(int64)": LongType(),
        "tensor(int32)": LongType(),
        "tensor(string)": StringType(),
        "tensor(bool)": BooleanType(),
    }
    from kepler.runtimes.manifest import profile_from_manifest
    from kepler.runtimes.session import create_session

    session = create_session(model.artifact.model_path, profile_from_manifest(model.artifact.manifest))
    types = {o.name: kinds.get(o.type, DoubleType()) for o in session.get_outputs()}
    outputs = model.artifact.output_schema
    by_name = {f.name: f for f in frame.schema.fields}
    fields = [StructField(k, by_name[k].dataType, True) for k in keep]
    fields.append(StructField(PREDICTION, types[outputs.answer], True))
    if outputs.probabilities and outputs.classes is not None:
        kind = types[outputs.probabilities]
        fields += [StructField(f"{PROBA_PREFIX}{c}", kind, True) for c in outputs.classes]
    if outputs.scores:
        fields.append(StructField(SCORE, types[outputs.scores], True))
    return StructType(fields)


def score_on_spark(
    model: ScoringModel,
    table: InputTable | str,
    output: str,
    *,
    spark: Any,
    keep: Sequence[str],
    batch_rows: int,
    overwrite: bool,
    shipped: ShippedArtifact | None = None,
) -> tuple[int, int, str]:
    """Scores ``table`` on Spark into the folder ``output`` (Parquet, or CSV when it ends in ``.csv``).

    A local output is written to a temporary folder beside it and renamed when the job succeeds; a URI
    (``s3a://``, ``hdfs://``) is left to Spark's committer.

    Returns:
        ``(rows, partitions, master)``.

    Raises:
        KeplerError: see :func:`session_for`; an error raised on an executor comes back as its own class.
    """
    session, made = session_for(spark)
    master = session.sparkContext.master
    try:
        frame, kind = read_input(session, table)
        check_columns(
            str(table.path if isinstance(table, InputTable) else table),
            frame.columns,
            model.artifact.input_schema.names,
            keep,
        )
        frame = frame.select(*[frame[c] for c in dict.fromkeys([*keep, *model.artifact.input_schema.names])])
        threads = int(session.sparkContext.getConf().get("spark.task.cpus", "1"))
        payload = shipped or ship(model, keep, threads=threads, text_input=kind == CSV)
        batch_key = "spark.sql.execution.arrow.maxRecordsPerBatch"
        before = session.conf.get(batch_key, None)
        session.conf.set(batch_key, str(batch_rows))  # a session-wide setting: restored below
        broadcast = session.sparkContext.broadcast(payload)
        counter = session.sparkContext.accumulator(0)
        try:
            with warnings.catch_warnings():
                # pyspark 4.3 warns that pandas 3 is not fully supported; mapInPandas over Arrow works (tested).
                warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
                from pyspark.sql.functions import lit

                scored = (
                    frame.mapInPandas(score_partitions(broadcast, counter), output_schema(model, frame, keep))
                    .withColumn(MODEL_ID, lit(model.model_id))
                    .withColumn(MODEL_SHA256, lit(model.sha256))
                )
            _write(scored, output, overwrite=overwrite)
        finally:
            broadcast.destroy()
            if before is None:
                session.conf.unset(batch_key)
            else:
                session.conf.set(batch_key, before)
        return int(counter.value), frame.rdd.getNumPartitions(), master
    finally:
        if made:
            session.stop()


def _write(scored: Any, output: str, *, overwrite: bool) -> None:
    """Writes the output folder: to a temporary folder renamed into place when local."""
    kind = table_format(output.rstrip("/")) or "parquet"
    remote = "://" in output
    target = output if remote else str(partial_path(Path(output)))
    try:
        writer = scored.write.mode("overwrite" if overwrite and remote else "errorifexists")
        try:
            if kind == CSV:
                writer.options(header=True).csv(target)
            else:
                writer.parquet(target)
        except Exception as exc:
            raise _from_executor(exc) from None
    except BaseException:  # an error or Ctrl-C: nothing half-written stays behind
        if not remote:
            remove_partial(Path(target))
        raise
    if not remote:
        put_in_place(Path(target), Path(output))


def _from_executor(exc: BaseException) -> KeplerError:
    """A Kepler error raised on an executor, as its own class with its own message; else one line."""
    found = _KEPLER_ERROR.findall(str(exc))
    if found:
        name, message = found[-1]
        cls = getattr(kepler.errors, name, KeplerError)
        if isinstance(cls, type) and issubclass(cls, KeplerError):
            try:
                return cls(message.strip())
            except TypeError:  # an error class that carries a report
                return KeplerError(message.strip())
    raised = _RAISED.findall(str(exc))
    why = raised[-1] if raised else _first_line(str(exc))
    return KeplerError(f"the Spark job failed: {why[:300]}; rerun with KEPLER_DEBUG=1 for Spark's trace")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"

"""Scoring on Spark: the master checked first, the artifact broadcast with the job, ``mapInPandas`` with one
onnxruntime session per Python worker (:mod:`kepler.scoring.worker`), the output folder renamed into place.

A wrong or unreachable master fails within seconds with one line naming it: the URL's form is checked, then
a ``spark://`` or ``k8s://`` master's port is tried with a short timeout before Spark is started, and a master
that accepts the application but runs no task fails after
:data:`kepler.spark_sessions.PROBE_TIMEOUT_S`.
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from kepler.spark_sessions import first_line as _first_line
from kepler.spark_sessions import session_for

_KEPLER_ERROR = re.compile(r"kepler\.errors\.(\w+): (.+)")
_RAISED = re.compile(r"^((?:[\w.]+\.)?\w+(?:Error|Exception): .+)$", re.MULTILINE)


def ship(model: ScoringModel, keep: Sequence[str], *, threads: int, text_input: bool) -> ShippedArtifact:
    """The artifact's files as the job carries them (with its compiled backends'), the model's bytes verified against its manifest once more
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
    # The compiled backends' files travel too (the executor's read_artifact checks their sha256); where one
    # cannot run on the executor, its Predictor serves with onnxruntime.
    backends = artifact.manifest.backends
    for backend in backends.compiled if backends is not None else ():
        for name in backend.files():
            if (artifact.path / name).is_file():
                files[name] = (artifact.path / name).read_bytes()
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
    session, made = session_for(spark, app_name="kepler-score")
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

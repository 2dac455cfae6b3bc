"""kp.compile: the front door that turns a fitted model into a verified artifact for a target."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from kepler.clock import now
from kepler.compilers import parity as parity_mod
from kepler.compilers.artifact import (
    CompiledArtifact,
    check_output,
    new_staging,
    publish,
    remove_at_exit,
    replace_reference,
    write_json,
    write_probe,
    write_reference,
)
from kepler.compilers.convert import TARGET_OPSET, to_onnx
from kepler.compilers.converters import CLASSIFIER
from kepler.compilers.environment import environment
from kepler.compilers.inspection import ModelInfo, inspect_model
from kepler.compilers.labels import check_encoded, decode, plain_labels, restore_labels
from kepler.compilers.passes import PassContext, check_pass_names, run_passes
from kepler.compilers.schema import apply_input_typing, infer_input_schema
from kepler.errors import (
    CompileError,
    InputSchemaError,
    MonitoringError,
    ParityError,
    UnsupportedModelError,
)
from kepler.runtimes.artifact import MANIFEST_NAME, read_artifact, sha256_file
from kepler.runtimes.benchmark import benchmark as run_benchmark
from kepler.runtimes.manifest import (
    ONNX_BACKEND,
    Benchmark,
    Environment,
    InputSchema,
    Manifest,
    OutputSchema,
    Parity,
    PassRecord,
    SessionSettings,
    Source,
)
from kepler.runtimes.predictor import Predictor
from kepler.runtimes.session import session_settings
from kepler.targets import TargetProfile, load_profile

if TYPE_CHECKING:
    from kepler.monitoring.reference import ReferenceProfile


def _json_params(estimator: Any) -> dict[str, Any]:
    if not hasattr(estimator, "get_params"):
        return {}
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, (bool, int, float, str)):
            params[key] = value
        else:
            params[key] = repr(value)
    return params


def _kepler_version() -> str:
    from kepler import __version__

    return __version__


def _source(info: ModelInfo) -> Source:
    final = info.final
    return Source(
        type=f"{type(info.model).__module__}.{type(info.model).__name__}",
        estimator=type(final).__name__,
        library=type(final).__module__.split(".")[0],
        role=info.role,
        families=tuple(info.families),
        steps=tuple(type(leaf).__name__ for leaf in info.leaves),
        params=_json_params(final),
    )


def _check_allowed(info: ModelInfo, profile: TargetProfile) -> None:
    allowed = set(profile.allowed_estimators)
    if allowed and info.spec.name not in allowed and info.spec.family not in allowed:
        raise UnsupportedModelError(
            f"target {profile.name!r} allows only {', '.join(sorted(allowed))}, not {info.spec.name} "
            f"(family {info.spec.family}); pick another model or another target"
        )


def _save_model(model: onnx.ModelProto, folder: Path, profile: TargetProfile) -> Path:
    onnx_path = folder / "model.onnx"
    onnx.save(model, str(onnx_path))
    if profile.artifact_format == "onnx":
        return onnx_path
    import onnxruntime as ort

    ort_path = folder / "model.ort"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(ort_path)
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.log_severity_level = 3
    ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    onnx_path.unlink()
    return ort_path


def _reference_profile(
    frame: Any,
    input_schema: InputSchema,
    output_schema: OutputSchema,
    compiled: dict[str, np.ndarray],
    labels: Any,
) -> ReferenceProfile:
    """The reference profile of the sample and of the compiled model's outputs on it (with a calibration
    table when a classifier's labels are given).

    The outputs are those the parity check computed, so profiling costs only sorting each column once.
    """
    from kepler.monitoring.reference import model_profile

    classes = list(output_schema.classes) if output_schema.classes is not None else None
    calibration = None
    if labels is not None and output_schema.task == CLASSIFIER and classes is not None:
        calibration = calibration_table(compiled["values"], labels, classes, rows=len(frame))
    return model_profile(
        frame,
        task=output_schema.task,
        outputs=compiled,
        numeric=[c.name for c in input_schema.columns if c.is_numeric],
        classes=classes,
        calibration=calibration,
    )


def calibration_table(
    probabilities: Any,
    labels: Any,
    classes: Sequence[Any],
    *,
    rows: int,
    positive: Any = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A classifier's calibration table (``CalibrationTable.to_dict()``) from its probabilities and true labels.

    ``positive`` and ``options`` (``precision_floor``, ``recall_target``; None values left out) go to
    ``CalibrationTable.fit``.

    Raises:
        CompileError: not one label per row, or a label that is none of the classes.
    """
    from kepler.monitoring.calibration import CalibrationTable

    truth = np.asarray(labels).ravel()
    if truth.shape[0] != rows:
        raise CompileError(
            f"{truth.shape[0]} labels for {rows} sample rows; pass one label per row of sample"
        )
    kept = {k: float(v) for k, v in (options or {}).items() if v is not None}
    try:
        fitted = CalibrationTable.fit(
            probabilities, truth, list(classes), positive=positive, options=kept or None
        )
    except MonitoringError as exc:  # a compile's error: the labels came with the model
        raise CompileError(f"labels= cannot calibrate the model: {exc}") from None
    table: dict[str, Any] = fitted.to_dict()
    return table


def calibrate(
    artifact: CompiledArtifact,
    probabilities: Any,
    labels: Any,
    *,
    positive: Any = None,
    options: dict[str, Any] | None = None,
) -> CompiledArtifact:
    """Adds a calibration table, fit on rows the model never saw, to a classifier artifact's reference profile.

    A search calls it with its held-out test rows, before it hands the artifact out; the artifact is swapped
    in one rename (:func:`kepler.compilers.artifact.replace_reference`).

    Args:
        artifact: A classifier artifact with a reference profile (compiled by this Kepler).
        probabilities: The artifact's class probabilities on the rows.
        labels: The rows' true labels, as the artifact answers them.
        positive: The positive class of a binary model (default: the rarer class of ``labels``).
        options: The use case's ``precision_floor`` and ``recall_target``, for the table's metrics.

    Returns:
        The artifact with the new profile (an artifact without a profile, or not a classifier, unchanged).

    Raises:
        CompileError: not one label per row, or a label that is none of the classes.
    """
    from kepler.monitoring.reference import ReferenceProfile, size_budget

    path = artifact.reference_path
    classes = artifact.output_schema.classes
    if path is None or classes is None or artifact.output_schema.task != CLASSIFIER:
        return artifact
    profile = ReferenceProfile.load(path)
    rows = len(probabilities)
    profile.calibration = calibration_table(
        probabilities, labels, list(classes), rows=rows, positive=positive, options=options
    )
    profile.fit_budget(size_budget(len(profile.columns) + len(profile.outputs)))
    return replace_reference(artifact, profile)


def compile(
    model: Any,
    target: str | os.PathLike[str] | TargetProfile = "edge",
    sample: Any = None,
    *,
    output: str | os.PathLike[str] | None = None,
    benchmark: bool = True,
    input_typing: dict[str, dict[str, Any]] | None = None,
    class_labels: Sequence[Any] | None = None,
    labels: Any = None,
) -> CompiledArtifact:
    """Compiles a fitted model into one verified ONNX artifact for a target profile.

    The graph takes the raw table (named numeric and categorical columns) and
    returns labels and probabilities, or values, as plain tensors. The artifact
    is checked against the native model on ``sample`` and the compile fails when
    they disagree beyond the profile's parity tolerance.

    Args:
        model: A fitted scikit-learn estimator or Pipeline, or an XGBoost or LightGBM model.
        target: ``"edge"``, ``"cloud"``, a registered profile name, a TOML path, or a profile.
        sample: Rows of the training data (DataFrame or 2-D array), used for the input
            schema and the parity check.
        output: Where to write the artifact folder; by default a temporary folder that is
            deleted when the process exits (keep it with ``artifact.save(path)``).
        benchmark: Whether to record a short benchmark on the profile in the manifest.
        input_typing: Per column, how to read raw values the way the training table was typed:
            ``{"from_text": "numbers" | "booleans"}`` for numeric columns, ``{"missing_as": "missing"}``
            for categorical ones; ``kp.data.load(...).input_typing()`` gives them. Kept in the manifest
            and applied by the runtime, so a service answers rows as they appear in the source table.
        class_labels: For a classifier fit on label codes 0..k-1 (text or unordered labels encoded for the
            search): the label each code stands for. The artifact then answers those labels, and parity
            compares the native model's decoded labels.
        labels: The true labels of ``sample``'s rows, if known (as the artifact answers them: the labels
            themselves, not codes). A classifier's reference profile then holds a calibration table for
            label-free performance estimation; other models do not use them.

    The artifact stores a reference profile of ``sample`` and of the compiled model's outputs on it
    (``reference.json``, :mod:`kepler.monitoring.reference`), which drift and monitoring compare served data
    with; the manifest records its sha256.

    Returns:
        The compiled artifact (folder, manifest, parity and benchmark reports).

    Raises:
        ProfileError: unknown or invalid target.
        UnsupportedModelError: unfitted model or unsupported component.
        InputSchemaError: the sample does not match the model.
        CompileError: conversion or a pass failed; ``labels`` not one per sample row or not the classes.
        ParityError: the artifact disagrees with the native model.
        ArtifactError: ``output`` exists and is not an artifact.
    """
    profile = load_profile(target)
    check_pass_names(profile.passes, profile.source or profile.name)
    destination = Path(output) if output is not None else None
    if destination is not None:
        check_output(destination)
    info = inspect_model(model)
    _check_allowed(info, profile)
    if sample is None:
        raise InputSchemaError(
            "pass sample= (rows of the training data): it fixes the input schema and checks parity"
        )
    input_schema, frame = infer_input_schema(info, sample)
    input_schema = apply_input_typing(input_schema, input_typing)

    graph, output_schema = to_onnx(info, input_schema, frame)
    if class_labels is not None:
        if info.role != CLASSIFIER or output_schema.label is None:
            raise CompileError(f"class_labels is for classifiers; this model is a {info.role}")
        check_encoded(output_schema.classes, class_labels)
        graph = restore_labels(graph, output_schema.label, class_labels)
        output_schema = dataclasses.replace(
            output_schema, classes=tuple(plain_labels(class_labels)), labels_restored=True
        )
    source = _source(info)
    context = PassContext(
        profile=profile,
        keep_outputs=list(output_schema.named),
        metadata={
            "kepler_version": _kepler_version(),
            "kepler.source": source.type,
            "kepler.estimator": type(info.final).__name__,
            "kepler.target": profile.name,
        },
    )
    graph, applied = run_passes(graph, profile.passes, context)
    output_schema = dataclasses.replace(output_schema, outputs=tuple(o.name for o in graph.graph.output))
    seed = source.params.get("random_state")

    staging = new_staging()
    try:
        model_path = _save_model(graph, staging, profile)
        manifest = Manifest(
            kepler_version=_kepler_version(),
            created_at=now(),
            model_file=model_path.name,
            sha256=sha256_file(model_path),
            size_bytes=model_path.stat().st_size,
            opset=dict(TARGET_OPSET),
            input_schema=input_schema,
            output_schema=output_schema,
            source=source,
            target=profile,
            session=SessionSettings.from_dict(session_settings(profile)),
            passes=tuple(PassRecord(**entry) for entry in applied),
            environment=Environment.from_dict(environment()),
            precision="preprocessing float64; tree estimators float32 as natively; see README 'Precision policy'",
            seed=seed if isinstance(seed, (int, str)) and not isinstance(seed, bool) else None,
        )
        write_json(staging / MANIFEST_NAME, manifest.to_dict())
        write_probe(staging, frame)

        predictor = Predictor(read_artifact(staging), profile)
        native_rows = frame if info.feature_names is not None else frame.to_numpy()
        native = parity_mod.native_outputs(info.model, info.role, native_rows)
        if class_labels is not None:
            native["label"] = decode(native["label"], class_labels)
        compiled = parity_mod.compiled_outputs(predictor, info.role, frame)
        report = parity_mod.compare(native, compiled, profile.parity)
        manifest = dataclasses.replace(manifest, parity=Parity.from_dict(report))
        if manifest.parity is None or not manifest.parity.passed:
            raise ParityError(
                f"parity check failed for {type(info.final).__name__} on target {profile.name!r}: "
                f"{parity_mod.summarize(report)}; loosen [parity] in the profile only if that difference is acceptable",
                report,
            )
        reference = _reference_profile(frame, input_schema, output_schema, compiled, labels)
        manifest = dataclasses.replace(manifest, reference=write_reference(staging, reference))
        if any(name != ONNX_BACKEND for name in profile.backends):
            from kepler.compilers.backends import choose_backends

            plan = choose_backends(staging, graph, manifest, profile, frame, native, info.role)
            manifest = dataclasses.replace(manifest, backends=plan)
            write_json(staging / MANIFEST_NAME, manifest.to_dict())  # the benchmark serves as the choice says
        if benchmark:
            measured = run_benchmark(staging, profile, data=frame.head(200), min_time_s=0.1, max_time_s=0.5)
            manifest = dataclasses.replace(manifest, benchmark=Benchmark.from_dict(measured))
        write_json(staging / MANIFEST_NAME, manifest.to_dict())

        if destination is None:
            remove_at_exit(staging)
            print(
                f"kepler: artifact in {staging} (temporary: removed when this process exits; pass output= "
                f"or call artifact.save(path) to keep it)",
                file=sys.stderr,
            )
            return CompiledArtifact(staging, manifest)
        publish(staging, destination)
        return CompiledArtifact(destination, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

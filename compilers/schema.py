"""Input schema of a compiled graph, inferred from the fitted model and a sample of its training data."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from kepler.compilers.inspection import ModelInfo
from kepler.errors import InputSchemaError
from kepler.runtimes.inputs import (
    CATEGORICAL,
    CATEGORICAL_INPUT,
    FROM_TEXT,
    MISSING_AS,
    MISSING_WORDS,
    NUMERIC,
    NUMERIC_INPUT,
    TEXT_FORMS,
)
from kepler.runtimes.manifest import Column, ColumnGroup, InputSchema


def _as_frame(sample: Any, names: list[str] | None, n_features: int | None) -> Any:
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        return sample
    array = np.asarray(sample)
    if array.ndim != 2:
        raise InputSchemaError(
            f"the sample must be 2-D (rows, columns), got shape {array.shape}; pass a table"
        )
    if names is None:
        names = [f"f{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise InputSchemaError(
            f"the sample has {array.shape[1]} columns but the model was fit on {len(names)}; "
            f"pass rows of the training data"
        )
    return pd.DataFrame(array, columns=names)


def _column_kind(series: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return NUMERIC
    return CATEGORICAL


def first_column_transformer(model: Any) -> Any:
    """The ColumnTransformer the model starts with (bare, or as a Pipeline's first step), or None."""
    first = model.steps[0][1] if type(model).__name__ == "Pipeline" else model
    return first if type(first).__name__ == "ColumnTransformer" else None


def _selects_by_name(model: Any) -> bool:
    """True when the model starts with a ColumnTransformer fit on named columns: the graph then takes one
    input per column, which lets text and numbers sit side by side."""
    transformer = first_column_transformer(model)
    if transformer is None:
        return False
    if getattr(transformer, "feature_names_in_", None) is not None:
        return True
    return any(
        isinstance(cols, str)
        or (isinstance(cols, (list, tuple)) and bool(cols) and all(isinstance(c, str) for c in cols))
        for _, _, cols in transformer.transformers
    )


def _column_positions(columns: Any, names: list[str], width: int) -> list[int]:
    """Positions of a ColumnTransformer's column selection (names, positions, a slice or a boolean mask)."""
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):  # label slices include their end
            start = names.index(columns.start) if columns.start is not None else 0
            stop = names.index(columns.stop) + 1 if columns.stop is not None else width
            return list(range(start, stop, columns.step or 1))
        return list(range(width))[columns]
    if isinstance(columns, (str, int, np.integer)):
        columns = [columns]
    values = list(columns)
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return [i for i, keep in enumerate(values) if keep]
    return [names.index(v) if isinstance(v, str) else int(v) for v in values]


def graph_column_name(position: int) -> str:
    """The name of a column inside the graph. Kepler generates it: a header may hold any character
    (``Air temperature [K]``), and converters rewrite or clash on such names."""
    return f"kepler_col_{position}"


def by_position(model: Any, names: list[str]) -> Any:
    """A copy of ``model`` whose ColumnTransformer selects columns by position instead of by name.

    The graph's inputs carry generated names (:func:`graph_column_name`), so the converter must find
    each column by its position, never by its header. The caller's model is not changed.
    """
    transformer = first_column_transformer(model)
    if transformer is None:
        return model
    model = copy.deepcopy(model)
    transformer = first_column_transformer(model)
    transformer.transformers_ = [
        (name, step, _column_positions(columns, names, len(names)))
        for name, step, columns in transformer.transformers_
    ]
    return model


def _encoder_categories(model: Any, names: list[str]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Categories per raw column, and whether unknown ones are allowed, from encoders that sit directly on raw
    columns of a ColumnTransformer."""
    first = first_column_transformer(model)
    if first is None:
        return {}
    found: dict[str, tuple[tuple[str, ...], bool]] = {}
    for _, transformer, columns in first.transformers_:
        if isinstance(transformer, str):
            continue
        steps = transformer.steps if type(transformer).__name__ == "Pipeline" else [("", transformer)]
        for _, step in steps:
            if type(step).__name__ in ("OneHotEncoder", "OrdinalEncoder"):
                positions = _column_positions(columns, names, len(names))
                for position, categories in zip(positions, step.categories_, strict=False):
                    found[names[position]] = (
                        tuple(str(c) for c in categories.tolist()),
                        step.handle_unknown != "error",
                    )
                break
            if type(step).__name__ != "SimpleImputer":
                break
    return found


def estimator_dtype(info: ModelInfo) -> str:
    """The float type the final estimator reads natively (its converter registration says)."""
    return info.spec.native_float


def numeric_input_dtype(info: ModelInfo) -> str:
    """Graph input type of numeric columns: float64 when preprocessing or a linear model reads them."""
    has_preprocessing = type(info.model).__name__ == "Pipeline" and len(info.model.steps) >= 2
    return "float64" if has_preprocessing else estimator_dtype(info)


def infer_input_schema(info: ModelInfo, sample: Any) -> tuple[InputSchema, Any]:
    """Builds the input schema and returns it with the sample as a DataFrame of exactly those columns.

    The schema lists every column (name, kind, dtype, known categories) and the two
    graph inputs: one matrix of the numeric columns and one of the categorical ones.

    Raises:
        InputSchemaError: the sample's columns differ from the model's, or the sample is empty.
    """
    frame = _as_frame(sample, info.feature_names, info.n_features)
    if len(frame) == 0:
        raise InputSchemaError("the sample is empty; pass rows of the training data")
    columns = [str(c) for c in frame.columns]
    if info.feature_names is not None:
        missing = [n for n in info.feature_names if n not in columns]
        if missing:
            raise InputSchemaError(
                f"the sample lacks columns the model was fit on: {', '.join(missing)}; pass rows of the training data"
            )
        extra = [c for c in columns if c not in info.feature_names]
        if extra:
            raise InputSchemaError(
                f"the sample has columns the model was not fit on: {', '.join(extra)}; drop them (the label too)"
            )
        frame = frame[info.feature_names]
        columns = list(info.feature_names)
    elif info.n_features is not None and len(columns) != info.n_features:
        raise InputSchemaError(
            f"the sample has {len(columns)} columns but the model was fit on {info.n_features}; "
            f"pass rows of the training data"
        )
    by_name = _selects_by_name(info.model)
    categories = _encoder_categories(info.model, columns) if by_name else {}
    numeric_dtype = numeric_input_dtype(info)
    specs = []
    for name in columns:
        kind = _column_kind(frame[name])
        if not by_name and kind != NUMERIC:
            raise InputSchemaError(
                f"column {name!r} holds text but the model takes a numeric matrix; "
                f"encode it in the pipeline (ColumnTransformer + OneHotEncoder) and refit"
            )
        if kind == NUMERIC:
            specs.append(Column(name=name, kind=kind, dtype=numeric_dtype))
        else:
            known, allow_unknown = categories.get(name, (None, True))
            specs.append(
                Column(name=name, kind=kind, dtype="string", categories=known, allow_unknown=allow_unknown)
            )
    numeric = tuple(s.name for s in specs if s.kind == NUMERIC)
    categorical = tuple(s.name for s in specs if s.kind == CATEGORICAL)
    schema = InputSchema(
        columns=tuple(specs),
        by_name=by_name,
        estimator_family=info.spec.family,
        converter_float=info.spec.input_float,
        numeric=ColumnGroup(NUMERIC_INPUT, numeric, numeric_dtype) if numeric else None,
        categorical=ColumnGroup(CATEGORICAL_INPUT, categorical) if categorical else None,
    )
    return schema, frame


IGNORED = (
    "ignored"  # input typing rule of a column the model does not read but callers may send (ids, the label)
)


def apply_input_typing(schema: InputSchema, typing: dict[str, dict[str, Any]] | None) -> InputSchema:
    """The schema with the input typing rules (``from_text``, ``missing_as``, ``missing_words``) on its columns,
    the columns marked ``ignored`` as ``ignored_columns``, and the missing words every column reads stored once.

    Args:
        schema: The input schema from :func:`infer_input_schema` (not changed).
        typing: Column name -> rules, e.g. ``kp.data.load(...).input_typing()``. ``{"ignored": True}`` marks a
            column of the source table that the model does not read (an id, a timestamp, the label): rows may
            carry it and the runtime ignores it. Other rules of columns the model does not read are ignored.

    Raises:
        InputSchemaError: a rule that does not fit its column (``from_text`` on a categorical column,
            ``missing_as`` on a numeric one, ``missing_words`` that is not a list of text, an unknown rule
            or text form), or ``ignored`` on a column the model reads.
    """
    if not typing:
        return schema
    columns = {column.name: column for column in schema.columns}
    ignored: list[str] = []
    for name, rules in typing.items():
        if not isinstance(rules, dict):
            raise InputSchemaError(f"input typing of column {name!r} must be a dict of rules, got {rules!r}")
        column = columns.get(str(name))
        if rules.get(IGNORED):
            if column is not None:
                raise InputSchemaError(
                    f"input typing marks column {name!r} ignored, but the model reads it; "
                    f"drop the column before fitting or remove the rule"
                )
            ignored.append(str(name))
            continue
        if column is None:
            continue
        for key, value in rules.items():
            if key == FROM_TEXT and column.kind == NUMERIC and value in TEXT_FORMS:
                column = dataclasses.replace(column, from_text=value)
            elif key == MISSING_AS and column.kind == CATEGORICAL and isinstance(value, str):
                column = dataclasses.replace(column, missing_as=value)
            elif (
                key == MISSING_WORDS
                and isinstance(value, (list, tuple))
                and all(isinstance(w, str) for w in value)
            ):
                column = dataclasses.replace(column, missing_words=tuple(dict.fromkeys(value)))
            elif key == IGNORED and not value:
                continue
            else:
                raise InputSchemaError(
                    f"input typing {key}={value!r} does not fit {column.kind} column {name!r}; use "
                    f"{FROM_TEXT}= one of {', '.join(TEXT_FORMS)} on numeric columns, {MISSING_AS}=<text> on "
                    f"categorical ones, {MISSING_WORDS}=[<text>, ...] on any"
                )
        columns[column.name] = column
    typed = dataclasses.replace(
        schema, columns=tuple(columns.values()), ignored_columns=(*schema.ignored_columns, *ignored)
    )
    return typed.sharing_missing_words()


def onnx_initial_types(schema: InputSchema, *, for_converter: bool = False) -> list[tuple[str, Any]]:
    """The skl2onnx ``initial_types``: one per column for models that select columns by name, else one matrix.

    With ``for_converter``, a bare tree ensemble's float64 matrix is declared float32,
    the only type the tree converters take; the float64 thresholds are restored after.
    """
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    def numeric(dtype: str) -> Any:
        return DoubleTensorType if dtype == "float64" else FloatTensorType

    if not schema.by_name:
        group = schema.numeric
        if group is None:  # infer_input_schema refuses text columns without by_name
            raise InputSchemaError("the model takes a numeric matrix but the schema has no numeric column")
        dtype = group.dtype or "float32"
        if for_converter:
            dtype = schema.converter_float or (
                "float64" if schema.estimator_family == "linear" else "float32"
            )
        return [(group.input, numeric(dtype)([None, len(group.columns)]))]
    return [
        (
            graph_column_name(i),
            numeric(spec.dtype)([None, 1]) if spec.is_numeric else StringTensorType([None, 1]),
        )
        for i, spec in enumerate(schema.columns)
    ]

"""Scoring one batch of rows: the output columns, shared by the local stream and the Spark workers.

This module is what a Spark executor imports: it needs only numpy, pandas, onnxruntime and kepler.runtimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes.inputs import PANDAS_MISSING_WORDS, TEXT_BOOLEANS
from kepler.runtimes.manifest import InputSchema, OutputSchema
from kepler.runtimes.predictor import Predictor

PREDICTION = "prediction"
SCORE = "score"
PROBA_PREFIX = "proba_"
MODEL_ID = "model_id"
MODEL_SHA256 = "model_sha256"


def output_names(outputs: OutputSchema) -> list[str]:
    """The columns the model adds to each row, in order: the prediction, then one probability per class
    (classifiers) or the anomaly score (outlier detectors that have one), then the model's id and sha256."""
    names = [PREDICTION]
    if outputs.probabilities and outputs.classes is not None:
        names += [f"{PROBA_PREFIX}{c}" for c in outputs.classes]
    if outputs.scores:
        names.append(SCORE)
    return [*names, MODEL_ID, MODEL_SHA256]


def check_keep(keep: Sequence[str], outputs: OutputSchema) -> list[str]:
    """The ``keep`` columns, once each, none named like an output column.

    Raises:
        KeplerError: a kept column shares its name with an output column.
    """
    kept = list(dict.fromkeys(str(k) for k in keep))
    taken = set(output_names(outputs))
    clash = [k for k in kept if k in taken]
    if clash:
        raise KeplerError(
            f"--keep {clash[0]!r} has the name of an output column ({', '.join(sorted(taken))}); "
            f"rename that column of the input"
        )
    return kept


def numbers_from_text(frame: pd.DataFrame, schema: InputSchema) -> pd.DataFrame:
    """``frame`` with the model's numeric columns that arrive as text (a CSV read untyped, as Spark reads
    one) turned into numbers as pandas reads a CSV cell; a column holding any other text is left as it is,
    so that the input contract refuses it with the row named."""
    converted: dict[str, Any] = {}
    for column in schema.columns:
        name = column.name
        if not column.is_numeric or column.from_text == TEXT_BOOLEANS or name not in frame.columns:
            continue
        values = frame[name]
        if values.dtype.kind in "fiub":
            continue
        words = schema.words(column) | PANDAS_MISSING_WORDS
        text = values.astype(object)
        missing = (text.isna() | text.isin(words)).to_numpy()
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype(np.float64)
        if bool((numbers.isna().to_numpy() & ~missing).any()):
            continue  # text that is no number: the Predictor names it
        converted[name] = numbers
    return frame.assign(**converted) if converted else frame


def score_frame(
    predictor: Predictor,
    frame: pd.DataFrame,
    keep: Sequence[str],
    model_id: str,
    sha256: str,
    *,
    identity: bool = True,
    dictionary: bool = False,
) -> pd.DataFrame:
    """The output rows of one batch: the ``keep`` columns, the prediction, the class probabilities (or
    anomaly score), and (``identity``) the model's id and sha256. One run of the model gives every output.

    With ``dictionary`` the id and sha256 columns are categorical, written as dictionary-encoded text (one
    value each): a column of 65,536 copies of one text otherwise costs more than the model's run.

    Raises:
        InputSchemaError: the batch breaks the model's input contract.
    """
    outputs = predictor.artifact.output_schema
    answers = predictor.run(frame)
    columns: dict[str, Any] = {name: frame[name].to_numpy() for name in keep}
    columns[PREDICTION] = answers[outputs.answer].ravel()
    if outputs.probabilities and outputs.classes is not None:
        probabilities = answers[outputs.probabilities]
        for i, label in enumerate(outputs.classes):
            columns[f"{PROBA_PREFIX}{label}"] = probabilities[:, i]
    if outputs.scores:
        columns[SCORE] = answers[outputs.scores].ravel()
    if identity:
        rows = len(frame)
        for name, value in ((MODEL_ID, model_id), (MODEL_SHA256, sha256)):
            columns[name] = (
                pd.Categorical.from_codes(np.zeros(rows, dtype=np.int8), [value])
                if dictionary
                else np.full(rows, value, dtype=object)
            )
    return pd.DataFrame(columns, copy=False)


def located(error: InputSchemaError, where: str, first_row: int) -> InputSchemaError:
    """``error`` with the file and the batch's first row in front (the contract counts rows from the batch's
    start)."""
    return InputSchemaError(f"{where}, batch from row {first_row}: {error}")

"""Trains the example model on the sensors table: imputation, scaling and one-hot encoding before XGBoost.

Writes ``model.joblib`` (the fitted Pipeline) and ``sample.csv`` (feature columns of
the training rows, for `kepler compile --sample`) into the output folder.

Usage:
    python examples/train_example.py --data examples/data/sensors.csv --output demo-out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

LABEL = "failure"
CATEGORICAL = ["machine_type"]
NUMERIC = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]


def build_pipeline(seed: int = 0) -> Pipeline:
    """The example model: preprocessing and a 100-tree XGBoost classifier."""
    preprocessing = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = XGBClassifier(n_estimators=100, max_depth=6, learning_rate=0.1, random_state=seed, n_jobs=1)
    return Pipeline([("preprocessing", preprocessing), ("model", model)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data" / "sensors.csv")
    parser.add_argument("--output", type=Path, default=Path("demo-out"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table = pd.read_csv(args.data)
    features = table[NUMERIC + CATEGORICAL]
    train_x, test_x, train_y, test_y = train_test_split(
        features, table[LABEL], test_size=0.25, random_state=args.seed, stratify=table[LABEL]
    )
    pipeline = build_pipeline(args.seed).fit(train_x, train_y)
    score = f1_score(test_y, pipeline.predict(test_x))

    args.output.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, args.output / "model.joblib")
    train_x.to_csv(args.output / "sample.csv", index=False)
    print(
        f"trained {type(pipeline[-1]).__name__} on {len(train_x)} rows; test F1 on failures {score:.3f}; "
        f"wrote {args.output / 'model.joblib'} and {args.output / 'sample.csv'}"
    )


if __name__ == "__main__":
    main()

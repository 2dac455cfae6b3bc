"""Writes a synthetic industrial sensors table whose rare failures follow physical rules.

The rules follow the AI4I 2020 predictive-maintenance dataset's description
(Matzka, 2020): tool wear, heat dissipation, power and overstrain failures, plus
rare random failures. Readings go missing at random, as sensors drop out.

Usage:
    python examples/make_sensors.py --rows 5000 --seed 7 --output examples/data/sensors.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

MACHINE_TYPES = ("L", "M", "H")
TYPE_SHARES = (0.5, 0.3, 0.2)
OVERSTRAIN_LIMIT = {"L": 11000.0, "M": 12000.0, "H": 13000.0}  # tool wear (min) × torque (Nm)
WEAR_RATE = {"L": 2.0, "M": 3.0, "H": 5.0}  # extra minutes of wear per use
MISSING_SHARE = 0.02


def make_sensors(rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    """Generates the table; the same ``rows`` and ``seed`` always give the same bytes."""
    rng = np.random.default_rng(seed)
    machine_type = rng.choice(MACHINE_TYPES, size=rows, p=TYPE_SHARES)
    air_temp_k = 300.0 + 2.0 * np.sin(np.linspace(0, 12 * np.pi, rows)) + rng.normal(0, 0.5, rows)
    process_temp_k = air_temp_k + 10.0 + rng.normal(0, 0.5, rows)
    power_target_w = rng.normal(6300, 800, rows)
    speed_rpm = np.clip(rng.normal(1540, 180, rows), 1150, 2900)
    omega = speed_rpm * 2 * np.pi / 60
    torque_nm = np.clip(power_target_w / omega + rng.normal(0, 4, rows), 3, 80)
    wear_rate = np.array([WEAR_RATE[t] for t in machine_type])
    tool_wear_min = np.floor(rng.uniform(0, 250, rows) + wear_rate).round()
    vibration_mm_s = np.abs(rng.normal(2.5, 0.8, rows) + 0.01 * tool_wear_min)

    power_w = torque_nm * omega
    limit = np.array([OVERSTRAIN_LIMIT[t] for t in machine_type])
    tool_wear_failure = (tool_wear_min >= 200) & (tool_wear_min <= 240) & (rng.uniform(size=rows) < 0.1)
    heat_failure = ((process_temp_k - air_temp_k) < 8.6) & (speed_rpm < 1380)
    power_failure = (power_w < 3500) | (power_w > 9000)
    overstrain_failure = tool_wear_min * torque_nm > limit
    random_failure = rng.uniform(size=rows) < 0.001
    failure = tool_wear_failure | heat_failure | power_failure | overstrain_failure | random_failure

    start = pd.Timestamp("2026-01-05 06:00:00")
    frame = pd.DataFrame(
        {
            "timestamp": (start + pd.to_timedelta(np.arange(rows) * 10, unit="min")).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "machine_id": [
                f"{t}{n:05d}" for t, n in zip(machine_type, rng.integers(0, 99999, rows), strict=False)
            ],
            "machine_type": machine_type,
            "air_temperature_k": air_temp_k.round(1),
            "process_temperature_k": process_temp_k.round(1),
            "rotational_speed_rpm": speed_rpm.round(0),
            "torque_nm": torque_nm.round(1),
            "tool_wear_min": tool_wear_min,
            "vibration_mm_s": vibration_mm_s.round(2),
            "failure": failure.astype(int),
        }
    )
    for column in ("air_temperature_k", "process_temperature_k", "torque_nm", "vibration_mm_s"):
        frame.loc[rng.uniform(size=rows) < MISSING_SHARE, column] = np.nan
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "data" / "sensors.csv")
    args = parser.parse_args()
    frame = make_sensors(args.rows, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output, index=False)
    print(f"wrote {len(frame)} rows ({frame['failure'].mean():.1%} failures) to {args.output}")


if __name__ == "__main__":
    main()

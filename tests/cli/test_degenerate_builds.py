"""`kepler build` on degenerate tables: each builds, or ends with one `error:` line and a documented exit code
(never 70, the internal error); a build stopped by SIGTERM or SIGINT leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kepler.cli.main import EXIT_INTERNAL, main

KEPLER = str(Path(sys.executable).with_name("kepler"))
# The exit codes the README's exit-code paragraph lists.
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}


def readings(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"temperature": rng.normal(60, 5, rows).round(2), "pressure": rng.normal(3, 0.5, rows).round(3)}
    )


def build(capsys: pytest.CaptureFixture[str], table: Path, *args: str) -> tuple[int, str, str]:
    """Runs `kepler build` in this process; returns the exit code, stdout and stderr."""
    code = main(["build", str(table), *args, "--output", str(table.parent / "builds"), "--no-track"])
    out, err = capsys.readouterr()
    assert code != EXIT_INTERNAL and code in DOCUMENTED, err
    assert "internal error" not in err and "Traceback" not in err
    return code, out, err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def only_build(folder: Path) -> Path:
    builds = list(folder.iterdir())
    assert len(builds) == 1 and not builds[0].name.startswith("."), builds
    return builds[0]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_one_positive_in_a_thousand_rows(tmp_path, capsys) -> None:
    frame = readings(1000).assign(failure=0)
    frame.loc[417, "failure"] = 1
    frame.to_csv(tmp_path / "rare.csv", index=False)
    code, _, err = build(capsys, tmp_path / "rare.csv", "--label", "failure", "--time-budget", "3s")
    assert code == 6  # before: 70, "ValueError: 1 is not in list"
    assert one_error(err).startswith(
        "error: label 'failure': class 1 has 1 row of 1000; a build needs at least 3 rows"
    )
    assert not (tmp_path / "builds").exists()


def test_a_three_class_text_label(tmp_path, capsys) -> None:
    frame = readings(300)
    frame["grade"] = np.where(frame.temperature > 63, "high", np.where(frame.temperature < 57, "low", "mid"))
    frame.to_csv(tmp_path / "grades.csv", index=False)
    (tmp_path / "families.json").write_text(json.dumps({"families": ["xgboost", "decision_tree"]}))
    code, out, err = build(
        capsys,
        tmp_path / "grades.csv",
        "--label",
        "grade",
        "--time-budget",
        "4s",
        "--constraints-file",
        str(tmp_path / "families.json"),
    )
    assert code == 0, err  # before: 70, XGBoost's "Invalid classes inferred from unique values of y"
    report = json.loads((only_build(tmp_path / "builds") / "report.json").read_text())
    assert report["class_labels"] == ["high", "low", "mid"] and report["labels_encoded"] is True
    assert {t["family"] for t in report["trials"]} == {"xgboost", "decision_tree"}
    assert "built" in out


def test_a_numeric_column_holding_gap_words(tmp_path, capsys) -> None:
    frame = readings(300).astype({"temperature": object})
    rng = np.random.default_rng(3)
    frame.loc[rng.random(300) < 0.3, "temperature"] = "—"
    frame.loc[rng.random(300) < 0.1, "temperature"] = "N/A"
    frame["failure"] = (frame.pressure > 3).astype(int)
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    code, out, err = build(capsys, tmp_path / "gaps.csv", "--label", "failure", "--time-budget", "4s")
    assert code == 0, err  # before: 70, "Sparse data was passed for X, but dense data is required"
    assert "values read as missing ('—' ×" in " ".join(out.split())  # the console says so
    artifact = only_build(tmp_path / "builds") / "artifact"
    manifest = json.loads((artifact / "manifest.json").read_text())
    column = next(c for c in manifest["input_schema"]["columns"] if c["name"] == "temperature")
    assert "—" in column["missing_words"] and "n.a." in column["missing_words"]
    # The runtime (and so the service) reads them as missing too: the same answers as for null.
    import kepler as kp

    predictor = kp.runtimes.load(artifact)
    words = [{"temperature": word, "pressure": 3.2} for word in ("—", "n.a.", "N/A", " - ")]
    np.testing.assert_array_equal(
        predictor.predict_proba(words), predictor.predict_proba([{"temperature": None, "pressure": 3.2}] * 4)
    )


def test_a_parquet_list_column_is_dropped_and_the_console_says_so(tmp_path, capsys) -> None:
    frame = readings(200)
    frame["spectrum"] = [[1.0, 2.0]] * len(frame)
    frame["failure"] = (frame.pressure > 3).astype(int)
    frame.to_parquet(tmp_path / "lists.parquet")
    code, out, err = build(capsys, tmp_path / "lists.parquet", "--label", "failure", "--time-budget", "3s")
    assert code == 0, err  # before: 70, "TypeError: unhashable type: 'numpy.ndarray'"
    text = " ".join(out.split())
    assert "1 column dropped" in text and "spectrum (dropped)" in text and "cells hold lists" in text


def test_dropped_columns_of_every_kind_are_on_the_console(tmp_path, capsys) -> None:
    frame = readings(120)
    frame["serial [#]"] = [f"SN-{i:05d}" for i in range(120)]
    frame["site"] = "plant 1"
    frame["empty"] = np.nan
    frame["failure"] = (frame.pressure > 3).astype(int)
    frame.to_csv(tmp_path / "dropped.csv", index=False)
    code, out, err = build(capsys, tmp_path / "dropped.csv", "--label", "failure", "--time-budget", "3s")
    assert code == 0, err
    text = " ".join(out.split())
    assert "3 columns dropped" in text
    for name in ("serial [#] (dropped)", "site (dropped)", "empty (dropped)"):
        assert name in text


def test_a_single_valued_label_shows_the_plain_value(tmp_path, capsys) -> None:
    readings(50).assign(failure=0).to_csv(tmp_path / "one.csv", index=False)
    code, _, err = build(capsys, tmp_path / "one.csv", "--label", "failure", "--time-budget", "3s")
    assert code == 6
    assert "has a single value (0) in all 50 rows" in one_error(err)  # before: (np.int64(0))


def test_a_wide_table_plans_its_time(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(150, 600)).round(3), columns=[f"s{i}" for i in range(600)])
    frame["failure"] = (frame.s0 + frame.s1 > 0).astype(int)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    code, out, err = build(capsys, tmp_path / "wide.csv", "--label", "failure", "--time-budget", "4s")
    assert code == 0, err
    report = json.loads((only_build(tmp_path / "builds") / "report.json").read_text())
    assert report["plan"]["evaluation"]["eval_method"] == "holdout" and report["plan"]["batch_sizes"] == [
        1,
        100,
    ]
    assert report["artifact"]["benchmark"]["process_peak_rss_mb"] is not None
    assert [b["batch"] for b in report["artifact"]["benchmark"]["batches"]] == [1, 100]
    assert "holdout instead of 5-fold" in " ".join(out.split())


def test_a_time_budget_above_the_maximum_needs_force(tmp_path, capsys) -> None:
    # A label with one value: a build that gets past the budget check stops at once on the label (exit 6), so the
    # test never starts a search of 99999 h (before, the budget was accepted without a word).
    readings(50).assign(failure=1).to_csv(tmp_path / "t.csv", index=False)
    code, out, err = build(capsys, tmp_path / "t.csv", "--label", "failure", "--time-budget", "99999h")
    assert code == 3 and out == ""
    assert one_error(err) == (
        "error: time budget 99999 h is above the maximum of 24 h; give a shorter one, "
        "or pass --force (force=True) to search that long"
    )
    # With --force the budget passes, and the build goes on to its next check.
    code, _, err = build(
        capsys, tmp_path / "t.csv", "--label", "failure", "--time-budget", "99999h", "--force"
    )
    assert code == 6 and "has a single value (1)" in one_error(err)


def test_kp_build_refuses_the_budget_too(tmp_path) -> None:
    import kepler as kp
    from kepler.errors import ProfileError

    readings(50).assign(failure=1).to_csv(
        tmp_path / "t.csv", index=False
    )  # past the check: a label error at once
    with pytest.raises(ProfileError, match="above the maximum of 24 h"):
        kp.build(
            str(tmp_path / "t.csv"), label="failure", time_budget="25h", output=tmp_path / "b", track=False
        )
    assert not (tmp_path / "b").exists()


# -- signals: a subprocess, since a signal stops the process that runs the build -------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(c) for c in text)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the search's process")
@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
    ids=["TERM", "INT"],
)
def test_a_signal_during_the_search_leaves_nothing_behind(tmp_path, signum, code, word) -> None:
    frame = readings(2000).assign(failure=lambda f: (f.pressure > 3).astype(int))
    frame.to_csv(tmp_path / "t.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    process = subprocess.Popen(
        [
            KEPLER,
            "build",
            str(tmp_path / "t.csv"),
            "--label",
            "failure",
            "--time-budget",
            "60s",
            "--output",
            str(tmp_path / "builds"),
            "--no-track",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        search = set()
        deadline = time.monotonic() + 120
        while not search and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            partial = list((tmp_path / "builds").glob(".*.partial")) if (tmp_path / "builds").exists() else []
            search = _children(process.pid) if partial else set()
        assert search, "the search never started"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = err.strip().splitlines()
    assert process.returncode == code and lines and lines[-1] == word, err
    assert not (tmp_path / "builds").exists()  # before (SIGTERM): an empty .<build-id>.partial/ folder
    end = time.monotonic() + 10
    while any(_alive(pid) for pid in search) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in search)  # the search's process is gone too

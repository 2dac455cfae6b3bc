"""kp.score in this process: the predictions equal the artifact's own Predictor's, streamed in bounded memory,
written whole or not at all; bad input fails with one clear error."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.errors import ArtifactError, DataError, InputSchemaError, KeplerError, VersioningError
from kepler.runtimes import read_artifact

PROBAS = ["proba_0", "proba_1", "proba_2"]


def check_parity(scoring: Any, artifact: Path, source: pd.DataFrame, out: pd.DataFrame) -> None:
    labels, probabilities = scoring.reference(artifact, source)
    np.testing.assert_allclose(out[PROBAS].to_numpy(dtype=np.float64), probabilities, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), labels)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_file_scores_as_the_artifacts_own_predictor(
    scoring: Any, scored_artifact: Any, tmp_path: Path, suffix: str
) -> None:
    frame = scoring.table(3000)
    source = tmp_path / f"rows{suffix}"
    frame.to_parquet(source) if suffix == ".parquet" else frame.to_csv(source, index=False)
    output = tmp_path / "scores.parquet"

    result = kp.score(scored_artifact.artifact, source, output, batch_size=700, keep=["id", "timestamp"])

    out = pd.read_parquet(output)
    read_back = pd.read_parquet(source) if suffix == ".parquet" else pd.read_csv(source)
    check_parity(scoring, scored_artifact.artifact, read_back, out)
    assert list(out.columns) == ["id", "timestamp", "prediction", *PROBAS, "model_id", "model_sha256"]
    assert out["id"].astype(np.int64).tolist() == list(range(3000))  # from a CSV the kept id is text
    sha = read_artifact(scored_artifact.artifact).manifest.sha256
    assert set(out["model_sha256"]) == {sha} and set(out["model_id"]) == {"forest"}
    assert (result.rows, result.batches, result.sha256, result.engine) == (
        3000,
        math.ceil(3000 / 700),
        sha,
        "local",
    )
    assert result.columns == list(out.columns)


def test_csv_output_and_a_folder_of_parts(scoring: Any, scored_artifact: Any, tmp_path: Path) -> None:
    folder = tmp_path / "history"
    (folder / "day=1").mkdir(parents=True)
    (folder / "day=2").mkdir()
    frame = scoring.table(900)
    frame.iloc[:400].to_parquet(folder / "day=1" / "part-0.parquet")
    frame.iloc[400:].to_parquet(folder / "day=2" / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")  # Spark's marker, skipped like the parts' .crc files
    (folder / "day=1" / ".part-0.parquet.crc").write_bytes(b"crc")
    output = tmp_path / "scores.csv"

    result = kp.score(scored_artifact.artifact, folder, output, keep=["id"])

    out = pd.read_csv(output)
    check_parity(scoring, scored_artifact.artifact, frame, out)
    assert out["id"].tolist() == list(range(900)) and result.rows == 900 and result.batches == 2


def test_memory_stays_bounded_on_a_csv_many_batches_long(
    scoring: Any, scored_artifact: Any, tmp_path: Path
) -> None:
    # Peak memory while scoring does not grow with the file: a file four times longer peaks no higher.
    batch = 2_000
    short, long = tmp_path / "short.csv", tmp_path / "long.csv"
    scoring.table(10_000).to_csv(short, index=False)
    scoring.table(40_000).to_csv(long, index=False)
    kp.score(scored_artifact.artifact, short, tmp_path / "warm.parquet", batch_size=batch)  # first-use costs
    peaks = {}
    for source in (short, long):
        tracemalloc.start()
        try:
            result = kp.score(
                scored_artifact.artifact, source, tmp_path / f"{source.stem}.parquet", batch_size=batch
            )
            peaks[source.stem] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.batches == result.rows // batch
    assert result.rows == 40_000
    assert peaks["long"] < 1.25 * peaks["short"], peaks  # read whole, it would peak about four times higher


def test_arrow_memory_stays_bounded_on_a_parquet_file_many_batches_long(
    scoring: Any, scored_artifact: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyarrow's memory (which tracemalloc does not see), read at every batch: a file four times longer holds no
    # more (pyarrow reads ahead whole row groups unless told not to).
    import pyarrow as pa

    import kepler.scoring.local as local

    held: list[int] = []
    real = local.score_frame

    def measured(*args: Any, **kwargs: Any) -> Any:
        held.append(pa.total_allocated_bytes())
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "score_frame", measured)
    peaks = {}
    for rows in (10_000, 40_000):
        source = tmp_path / f"rows-{rows}.parquet"
        scoring.table(rows).to_parquet(source, row_group_size=2_000)
        held.clear()
        kp.score(scored_artifact.artifact, source, tmp_path / f"out-{rows}.parquet", batch_size=2_000)
        peaks[rows] = max(held)
    assert peaks[40_000] < 1.25 * peaks[10_000], peaks


def test_an_existing_output_is_kept_unless_overwrite(
    scoring: Any, scored_artifact: Any, tmp_path: Path
) -> None:
    source = tmp_path / "rows.parquet"
    scoring.table(50).to_parquet(source)
    output = tmp_path / "scores.parquet"
    output.write_text("earlier results")
    with pytest.raises(KeplerError, match="exists; remove it, choose another output, or pass --overwrite"):
        kp.score(scored_artifact.artifact, source, output)
    assert output.read_text() == "earlier results"
    kp.score(scored_artifact.artifact, source, output, overwrite=True)
    assert len(pd.read_parquet(output)) == 50


def test_bad_rows_leave_no_output_and_name_the_file_and_row(
    scoring: Any, scored_artifact: Any, tmp_path: Path
) -> None:
    frame = scoring.table(1000).astype({"rpm": object})
    frame.loc[812, "rpm"] = "fast"
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(
        InputSchemaError, match=r"rows\.csv, batch from row 800: column 'rpm' .*'fast'.* row 12"
    ):
        kp.score(scored_artifact.artifact, source, tmp_path / "scores.parquet", batch_size=200)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no output, no partial file


def test_an_interruption_leaves_no_partial_output(
    scoring: Any, scored_artifact: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kepler.scoring.local as local

    source = tmp_path / "rows.parquet"
    scoring.table(1000).to_parquet(source)
    calls = []
    real = local.score_frame

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "score_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kp.score(scored_artifact.artifact, source, tmp_path / "scores.parquet", batch_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet"]


def test_a_missing_column_is_named_before_anything_is_scored(
    scoring: Any, scored_artifact: Any, tmp_path: Path
) -> None:
    source = tmp_path / "rows.csv"
    scoring.table(20).drop(columns=["pressure"]).to_csv(source, index=False)
    with pytest.raises(
        InputSchemaError, match=r"rows\.csv: missing columns 'pressure', which the model reads"
    ):
        kp.score(scored_artifact.artifact, source, tmp_path / "scores.csv")
    scoring.table(20).to_csv(source, index=False)
    with pytest.raises(InputSchemaError, match=r"no column 'serial' to keep"):
        kp.score(scored_artifact.artifact, source, tmp_path / "scores.csv", keep=["serial"])


def test_a_kept_column_may_not_take_an_output_name(
    scoring: Any, scored_artifact: Any, tmp_path: Path
) -> None:
    source = tmp_path / "rows.parquet"
    scoring.table(20).rename(columns={"id": "prediction"}).to_parquet(source)
    with pytest.raises(KeplerError, match="--keep 'prediction' has the name of an output column"):
        kp.score(scored_artifact.artifact, source, tmp_path / "scores.csv", keep=["prediction"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.parquet", b"id,rpm\n1,2\n", r"rows\.parquet: not a readable Parquet file"),
        ("rows.csv", b"PAR1\x00\x00", r"rows\.csv: this is a Parquet file with a \.csv name"),
        ("rows.csv", b"", r"rows\.csv: the file holds no table"),
        ("rows.json", b"{}", r"rows\.json: not a table \(\.json suffix\)"),
    ],
)
def test_unreadable_input_is_a_data_error(
    scored_artifact: Any, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        kp.score(scored_artifact.artifact, tmp_path / name, tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()


def test_an_unknown_model_and_a_tampered_one_are_refused(
    scoring: Any, scored_artifact: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    source = tmp_path / "rows.parquet"
    scoring.table(20).to_parquet(source)
    monkeypatch.chdir(tmp_path)  # no Kepler project here
    with pytest.raises(
        VersioningError, match="'pm-9.9' is no artifact folder, and there is no Kepler project here"
    ):
        kp.score("pm-9.9", source, tmp_path / "scores.csv")
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        kp.score("./gone", source, tmp_path / "scores.csv")
    copy = tmp_path / "copy"
    shutil.copytree(scored_artifact.artifact, copy)
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(ArtifactError, match="sha256 .* does not match the manifest"):
        kp.score(copy, source, tmp_path / "scores.csv")


def test_a_bad_output_name_and_batch_size(scored_artifact: Any, tmp_path: Path) -> None:
    with pytest.raises(KeplerError, match=r"give the output a \.parquet or \.csv name"):
        kp.score(scored_artifact.artifact, tmp_path, tmp_path / "scores.txt")
    with pytest.raises(KeplerError, match="no such folder for the output"):
        kp.score(scored_artifact.artifact, tmp_path, tmp_path / "gone" / "scores.csv")
    with pytest.raises(KeplerError, match="batch size 0 must be at least 1 row"):
        kp.score(scored_artifact.artifact, tmp_path, tmp_path / "scores.csv", batch_size=0)

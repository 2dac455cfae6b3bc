"""`kepler score`: score a table with a release's or an artifact's model, in this process or on Spark.

Usage:
    kepler score pm-1.0 data/history.parquet --output scores.parquet --keep machine_id --keep timestamp
    kepler score artifacts/model-edge data/history.csv --output scores.csv --batch-size 100000
    kepler score pm-1.0 data/history/ --output scores.parquet --spark local[2]
    kepler score pm-1.0 s3a://plant/history/ --output s3a://plant/scores/ --spark spark://master:7077 --json
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app


@app.command("score")
def score_command(
    release_or_artifact: str = typer.Argument(..., help="A release of this project, or an artifact folder."),
    input_path: str = typer.Argument(
        ..., metavar="INPUT", help="Parquet or CSV file, or a folder of them (a URI with --spark)."
    ),
    output: str = typer.Option(
        ...,
        "--output",
        "-o",
        help="Output .parquet or .csv file; with --spark, a folder of part files (.csv: CSV, else Parquet).",
    ),
    spark: str | None = typer.Option(
        None, "--spark", metavar="MASTER", help="Score on Spark: local[N], spark://HOST:PORT, yarn, k8s://..."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Rows per batch (default 65536)."
    ),
    keep: list[str] | None = typer.Option(
        None, "--keep", help="Input column to copy to the output, such as an id (repeatable)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write predictions and class probabilities for every row of a table, with the model's id and sha256."""
    from kepler.cli import output as out
    from kepler.scoring import score

    result = score(
        release_or_artifact,
        input_path,
        output,
        spark=spark,
        batch_size=batch_size,
        keep=keep or [],
        overwrite=overwrite,
        progress=not as_json,
    )
    if as_json:
        out.print_json(result.to_dict())
        return
    out.console().print(
        f"scored {result.rows:,} rows with {result.model_kind} {result.model_id} "
        f"(sha256 {result.sha256[:12]}…) on {result.engine} in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s) → {Path(result.output)}"
    )

"""`kepler deploy` and `kepler serve`: a release as a BentoML service, locally or on Cloud Run.

Usage:
    kepler deploy stable-v1.0                          # package it (BentoML model + bento) and record the deployment
    kepler deploy stable-v1.0 --port 3000              # ... and run it in the background on port 3000
    kepler deploy stable-v0.9 --port 3000              # an earlier release on the same port: the rollback
    kepler deploy --stop --port 3000                   # stop the server Kepler started there
    kepler deploy stable-v1.0 --batching --workers 2 --max-body-mb 8 --json
    kepler deploy stable-v1.0 --port 3000 --unknown-columns ignore   # ignore request columns the model does not know
    kepler deploy stable-v1.0 --platform cloud-run --image-tag europe-docker.pkg.dev/p/r/kepler:1.0.0
    kepler serve stable-v1.0 --port 3000               # foreground, for development (Ctrl-C stops it)
    curl -s localhost:3000/metadata
    curl -s -X POST localhost:3000/predict -H 'content-type: application/json' -d '[{"torque_nm": 40.1, ...}]'
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app

UNKNOWN_HELP = (
    "reject (422, the default) or ignore: request columns the model does not know. Columns the build "
    "dropped (ids, timestamps, the label) are always ignored."
)


@app.command("deploy")
def deploy_command(
    release: str | None = typer.Argument(None, help="The release to deploy."),
    platform: str = typer.Option("local", "--platform", "-p", help="local or cloud-run."),
    port: int | None = typer.Option(
        None, "--port", help="Local: run the service in the background on this port."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Local: the address to listen on."),
    stop: bool = typer.Option(
        False, "--stop", help="Stop the server Kepler started on --port, and deploy nothing."
    ),
    rollback: bool | None = typer.Option(
        None,
        "--rollback/--no-rollback",
        help="Record as a rollback or not (default: when the version is earlier).",
    ),
    batching: bool = typer.Option(
        False, "--batching", help="Adaptive batching, set from the target profile."
    ),
    workers: int = typer.Option(1, "--workers", help="Service worker processes."),
    max_body_mb: float | None = typer.Option(None, "--max-body-mb", help="Largest request body (default 4)."),
    access_log: bool = typer.Option(False, "--access-log", help="BentoML's per-request access log."),
    unknown_columns: str = typer.Option("reject", "--unknown-columns", help=UNKNOWN_HELP),
    image_tag: str | None = typer.Option(
        None, "--image-tag", help="Cloud Run: the image name (with its registry)."
    ),
    base_image: str | None = typer.Option(None, "--base-image", help="Cloud Run: replace the image's base."),
    output_dir: Path | None = typer.Option(None, "--output-dir", help="Cloud Run: where service.yaml goes."),
    region: str | None = typer.Option(None, "--region", help="Cloud Run: the region."),
    no_build: bool = typer.Option(False, "--no-build", help="Cloud Run: write service.yaml only."),
    as_json: bool = typer.Option(False, "--json", help="Print the deployment as JSON."),
) -> None:
    """Deploy a release: BentoML model (ONNX artifact, manifest, lineage) + bento; record it; optionally run it."""
    from kepler.errors import KeplerError

    if stop:
        if port is None:
            raise KeplerError("--stop needs --port N")
        from kepler.deployment import stop as stop_server

        stopped = stop_server(port)
        typer.echo(
            f"stopped the Kepler server on port {port}" if stopped else f"no Kepler server on port {port}"
        )
        return
    if release is None:
        raise KeplerError(
            "name the release to deploy, e.g. `kepler deploy stable-v1.0` (list them with "
            "`kepler versioning list-releases`)"
        )
    from kepler.deployment import deploy

    options: dict[str, str | Path | bool] = {
        k: v
        for k, v in {
            "image_tag": image_tag,
            "base_image": base_image,
            "output_dir": output_dir,
            "region": region,
        }.items()
        if v is not None
    }
    if no_build:
        options["build"] = False
    done = deploy(
        release,
        platform=platform,
        port=port,
        host=host,
        rollback=rollback,
        batching=batching or None,
        workers=workers,
        max_body_mb=max_body_mb,
        access_log=access_log,
        unknown_columns=unknown_columns,
        **options,
    )
    if as_json:
        from kepler.cli.output import print_json

        print_json(done.to_dict())
        return
    what = "rolled back to" if done.rollback else "deployed"
    typer.echo(
        f"{what} {done.release} {done.version} on {done.platform}"
        + (f" (replacing {done.previous})" if done.previous and done.previous != done.release else "")
    )
    typer.echo(f"  bento:   {done.bento_tag}")
    typer.echo(f"  model:   {done.model_tag}")
    if done.image_tag:
        typer.echo(f"  image:   {done.image_tag}")
    if done.service_node:
        typer.echo(f"  lineage: {done.service_node} <- {done.release}")
    if done.url:
        typer.echo(
            f"  serving: {done.url}  (pid {done.pid}, log {done.log}; stop: kepler deploy --stop --port {port})"
        )
    elif done.platform == "local":
        typer.echo(
            f"  run it:  kepler serve {done.release} --port 3000   "
            f"(or BENTOML_HOME={done.bentoml_home} bentoml serve {done.bento_tag})"
        )
    elif done.details.get("message"):
        typer.echo(f"  {done.details['message']}")


@app.command("serve")
def serve_command(
    release: str = typer.Argument(..., help="The release to serve."),
    port: int = typer.Option(3000, "--port", help="The port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on."),
    batching: bool = typer.Option(
        False, "--batching", help="Adaptive batching, set from the target profile."
    ),
    workers: int = typer.Option(1, "--workers", help="Service worker processes."),
    max_body_mb: float | None = typer.Option(None, "--max-body-mb", help="Largest request body (default 4)."),
    access_log: bool = typer.Option(
        True, "--access-log/--no-access-log", help="BentoML's per-request access log."
    ),
    unknown_columns: str = typer.Option("reject", "--unknown-columns", help=UNKNOWN_HELP),
) -> None:
    """Run a release's service in the foreground, for development (records no deployment)."""
    from kepler.deployment import serve

    code = serve(
        release,
        port=port,
        host=host,
        batching=batching or None,
        workers=workers,
        max_body_mb=max_body_mb,
        access_log=access_log,
        unknown_columns=unknown_columns,
    )
    if code not in (0, -2, 130):
        raise typer.Exit(code)

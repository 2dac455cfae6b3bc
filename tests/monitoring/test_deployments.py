"""Deployment success (kepler/monitoring/deployments.py, `kepler monitor deployments`): counts and time to ready
from the release history, and status rates from BentoML's /metrics text.

Two samples of that text were taken from real servers of BentoML 1.4.40: ``bentoml_metrics.txt`` from a plain
BentoML service (two 200s, a 400, a 500 and a 404 on /predict and /nope, and a /readyz) and
``kepler_service_metrics.txt`` from `kp.deploy(release, port=...)` of a Kepler release (three 200s, a 400 and a
422 on /predict, two /readyz; its answer carried ``X-Kepler-Release``)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kepler.errors import KeplerError, MonitoringError
from kepler.monitoring.deployments import _history_row, _url, deployment_success, parse_metrics

SAMPLE = Path(__file__).parent / "data" / "bentoml_metrics.txt"
PREVIOUS = Path(__file__).parents[1] / "previous_records" / "records" / "releases" / "pm-1.0.json"


def test_bentomls_real_metrics_text_gives_requests_by_status_without_health_checks() -> None:
    counters = parse_metrics(SAMPLE.read_text(encoding="utf-8"))
    assert counters.codes == {"200": 2, "400": 1, "500": 1, "404": 1}  # /readyz's 200 left out
    assert counters.endpoints == {"/predict": 4, "/nope": 1}
    assert counters.requests == 5
    assert (counters.rate("2xx"), counters.rate("4xx"), counters.rate("5xx")) == (0.4, 0.4, 0.2)
    everything = parse_metrics(SAMPLE.read_text(encoding="utf-8"), skip=())
    assert everything.codes["200"] == 3


def test_a_kepler_services_real_metrics_text() -> None:
    counters = parse_metrics((SAMPLE.parent / "kepler_service_metrics.txt").read_text(encoding="utf-8"))
    assert counters.codes == {"200": 3, "400": 1, "422": 1}  # its 500s stand at 0, its /readyz is left out
    assert counters.endpoints == {"/predict": 5}
    assert (counters.rate("2xx"), counters.rate("4xx"), counters.rate("5xx")) == (0.6, 0.4, 0.0)


def test_older_counter_names_escaped_labels_and_text_without_counters() -> None:
    text = (
        "# TYPE bentoml_api_server_request_total counter\n"
        'bentoml_api_server_request_total{endpoint="/a\\"b",http_response_code="503",service_name="s"} 4.0\n'
        'bentoml_api_server_request_total{endpoint="/livez",http_response_code="200",service_name="s"} 9.0\n'
        "other_metric 1\n"
    )
    counters = parse_metrics(text)
    assert counters.codes == {"503": 4} and counters.endpoints == {'/a"b': 4}
    assert counters.rate("5xx") == 1.0 and counters.rate("2xx") == 0.0
    with pytest.raises(MonitoringError, match="no request counter"):
        parse_metrics("# HELP x\nprocess_cpu_seconds_total 1.5\n")


def test_a_release_recorded_before_failures_and_readiness_were_kept_still_reads() -> None:
    from kepler.versioning.releases import Release

    release = Release.from_dict(json.loads(PREVIOUS.read_text(encoding="utf-8")))
    row = _history_row(release)
    assert (row.attempted, row.succeeded, row.failed, row.rollbacks) == (1, 1, 0, 0)
    assert row.ready_median_s is None and row.ready_max_s is None and row.success_rate == 1.0
    assert row.last_deployed_at == "2026-11-30T02:36:17.584935+00:00"
    assert _url(release.history[-1]) == "http://127.0.0.1:3000"  # its URL was its target then
    assert row.metrics() == {
        "attempted": 1.0,
        "succeeded": 1.0,
        "failed": 0.0,
        "rollbacks": 0.0,
        "rolled_back": 0.0,
        "success_rate": 1.0,
    }


class _Metrics(http.server.BaseHTTPRequestHandler):
    release = "pm-1.1"

    def do_GET(self) -> None:
        body = SAMPLE.read_bytes()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("X-Kepler-Release", type(self).release)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[str]:
    """A server answering /metrics with the BentoML sample and ``X-Kepler-Release: pm-1.1``."""
    _Metrics.release = "pm-1.1"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics_server: str) -> Any:
    """Releases pm-1.0, pm-1.1 and pm-1.2 of line pm, with this history, oldest first:
    pm-1.0 deployed (ready in 2 s, its server now gone); pm-1.1 failed once, then deployed twice to the
    running server (ready in 3 s and 5 s); pm-1.0 deployed again, a rollback (ready in 1 s); pm-1.2 never."""
    from kepler.deployment.deployments import _failures_recorded
    from kepler.deployment.records import record_service
    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    made = init(tmp_path / "proj")
    monkeypatch.chdir(made.root)
    for name, version in (("pm-1.0", "1.0.0"), ("pm-1.1", "1.1.0"), ("pm-1.2", "1.2.0")):
        create_release(name, version, model_line="pm")
    gone = _dead_url()

    def deployed(name: str, url: str, ready_s: float) -> dict[str, Any]:
        return record_service(
            name,
            {},
            platform="local",
            target=url,
            bento_tag=f"kepler-{name}:abc",
            details={"url": url, "ready_s": ready_s},
        )

    deployed("pm-1.0", gone, 2.0)
    with pytest.raises(KeplerError, match="did not become ready"):
        with _failures_recorded("pm-1.1", "local", metrics_server, made):
            raise KeplerError("the service for pm-1.1 did not become ready on it (it exited)")
    deployed("pm-1.1", metrics_server, 3.0)
    deployed("pm-1.1", metrics_server, 5.0)
    assert deployed("pm-1.0", gone, 1.0)["rollback"] is True  # earlier than pm-1.1, last deployed on local
    return made


@pytest.mark.integration
def test_history_counts_time_to_ready_and_the_running_servers_rates(
    project: Any, metrics_server: str
) -> None:
    report = deployment_success()
    assert [row.release for row in report.releases] == ["pm-1.0", "pm-1.1", "pm-1.2"]
    old, new, never = report.releases
    assert (old.attempted, old.succeeded, old.failed, old.rollbacks, old.rolled_back) == (2, 2, 0, 1, 0)
    assert (old.ready_median_s, old.ready_max_s) == (1.5, 2.0)
    assert old.server == "not running" and old.requests is None and old.rate_2xx is None
    assert (new.attempted, new.succeeded, new.failed, new.rollbacks, new.rolled_back) == (3, 2, 1, 0, 1)
    assert (new.ready_median_s, new.ready_max_s) == (4.0, 5.0)
    assert new.success_rate == pytest.approx(2 / 3)
    assert new.last_error is not None and "did not become ready" in new.last_error
    assert (new.server, new.url, new.requests) == ("running", metrics_server, 5)
    assert (new.rate_2xx, new.rate_4xx, new.rate_5xx) == (0.4, 0.4, 0.2)
    assert new.codes == {"200": 2, "400": 1, "404": 1, "500": 1}
    assert (never.attempted, never.server, never.ready_median_s) == (0, "no local server", None)
    json.dumps(report.to_dict())

    _Metrics.release = "pm-7.0"  # the port now answers for another release
    row = deployment_success("pm-1.1").row("pm-1.1")
    assert row.server == "serves pm-7.0" and row.requests is None
    with pytest.raises(MonitoringError, match="unknown release 'pm-9'"):
        deployment_success("pm-9")


@pytest.mark.integration
def test_cli_prints_rows_and_records_each_release_checked(project: Any) -> None:
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from kepler.cli.main import app, exit_code_for

    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "deployments", "--release", "pm-1.1", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["releases"]
    assert (row["release"], row["failed"], row["server"], row["rate_5xx"]) == ("pm-1.1", 1, "running", 0.2)
    run_id = result.stderr.split("MLflow run ")[1].split(",")[0]
    run = MlflowClient(tracking_uri=project.tracking_uri).get_run(run_id)
    assert run.data.tags["kepler.monitor"] == "deployments" and run.data.tags["kepler.release"] == "pm-1.1"
    assert run.data.metrics["failed"] == 1.0 and run.data.metrics["rate_2xx"] == 0.4
    assert run.data.metrics["ready_max_s"] == 5.0

    table = runner.invoke(app, ["monitor", "deployments"])
    assert table.exit_code == 0, table.output
    assert "pm-1.2" in table.stdout and "not running" in table.stdout
    bad = runner.invoke(app, ["monitor", "deployments", "--release", "pm-9"])
    assert isinstance(bad.exception, MonitoringError) and exit_code_for(bad.exception) == 13

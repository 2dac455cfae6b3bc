"""``kp.monitoring.deployment_success``: per release, how its deployments went and how its server answers.

From the release's history (:mod:`kepler.deployment.records`):

* **attempted**: every deployment, failed ones included; **succeeded**: ``deploy`` and ``rollback``
  entries; **failed**: ``deploy-failed`` entries (a packaged release whose server never became ready, or whose Cloud Run
  build or deploy failed);
* **rollbacks**: its deployments that rolled back to it; **rolled back**: how often a rollback to an
  earlier release replaced it (that rollback's entry names it in ``replaces``);
* **time to ready**: median and maximum of ``ready_s``, from launching a local server to its first
  ready ``/readyz`` (deployments recorded before Kepler kept it, and those that started no server, have
  none).

From the running service's counters: the server a release was last deployed to locally is asked for
BentoML's ``/metrics`` (Prometheus text), and ``bentoml_service_request_total`` is summed by HTTP status
class over the service's endpoints (health checks and ``/metrics`` left out): the 2xx, 4xx and 5xx rates
since the server started. A release whose server is not running, or whose port now serves another
release (its answer's ``X-Kepler-Release`` says which), says so in its row.
"""

from __future__ import annotations

import re
import statistics
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from kepler.errors import MonitoringError, ProjectNotFoundError, VersioningError

COUNTERS = ("bentoml_service_request_total", "bentoml_api_server_request_total")  # BentoML 1.4, then older
NOT_TRAFFIC = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
RELEASE_HEADER = "X-Kepler-Release"
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


@dataclass
class ServiceCounters:
    """Requests a running service answered since it started, by HTTP status code.

    Attributes:
        codes: Status code (as text) -> requests, over the service's endpoints.
        endpoints: Endpoint -> requests.
    """

    codes: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Every request counted."""
        return sum(self.codes.values())

    def rate(self, status_class: str) -> float | None:
        """Share of requests answered with ``2xx``, ``3xx``, ``4xx`` or ``5xx``; None with no request."""
        total = self.requests
        if not total:
            return None
        return sum(n for code, n in self.codes.items() if code[:1] == status_class[:1]) / total


def parse_metrics(text: str, *, skip: Iterable[str] = NOT_TRAFFIC) -> ServiceCounters:
    """The request counters of BentoML's ``/metrics`` text (Prometheus exposition format).

    Sums ``bentoml_service_request_total`` (BentoML 1.4; ``bentoml_api_server_request_total`` where only
    that one is exposed) over its ``endpoint`` label, by ``http_response_code``, leaving out ``skip``.

    Raises:
        MonitoringError: the text holds no request counter (not BentoML's metrics, or metrics turned off).
    """
    skipped = set(skip)
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        if not name.endswith("_request_total"):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        parsed = {k: _unescape(v) for k, v in _LABEL.findall(labels or "")}
        if "http_response_code" in parsed:
            samples.setdefault(name, []).append((parsed, number))
    chosen = next((name for name in COUNTERS if name in samples), None) or next(iter(sorted(samples)), None)
    if chosen is None:
        raise MonitoringError(
            "the service's /metrics holds no request counter (bentoml_service_request_total); "
            "check that BentoML's metrics are on"
        )
    counters = ServiceCounters()
    for labels, number in samples[chosen]:
        endpoint = labels.get("endpoint", "")
        if endpoint in skipped:
            continue
        count = int(round(number))
        if count <= 0:  # BentoML starts some counters at 0 (a 500 of each API before any request)
            continue
        code = labels["http_response_code"]
        counters.codes[code] = counters.codes.get(code, 0) + count
        counters.endpoints[endpoint] = counters.endpoints.get(endpoint, 0) + count
    return counters


def _unescape(value: str) -> str:
    return value.replace(r"\"", '"').replace(r"\n", "\n").replace("\\\\", "\\")


@dataclass
class ReleaseDeployments:
    """One release's row: its deployment history and its server's answers.

    Attributes:
        release: The release.
        version: Its version.
        model_line: Its model line.
        status: Its status (draft, staging, production, archived).
        attempted: Deployments tried (succeeded + failed).
        succeeded: Deployments that came up (``deploy`` and ``rollback`` entries).
        failed: Deployments that did not (``deploy-failed`` entries).
        rollbacks: Its deployments that were rollbacks to it.
        rolled_back: Times a rollback to an earlier release replaced it.
        ready_median_s: Median time to ready of its local servers, or None when none was recorded.
        ready_max_s: The longest, or None.
        last_deployed_at: When it was last deployed (successfully), or None.
        last_error: The last failure's error, or None.
        server: ``running``, ``not running``, ``serves <release>``, ``no local server`` or ``unreadable``.
        url: The server asked, or None.
        requests: Requests its server answered since it started (health checks left out), or None.
        rate_2xx: Share of them answered 2xx, or None.
        rate_4xx: Share answered 4xx, or None.
        rate_5xx: Share answered 5xx, or None.
        codes: Requests by status code.
        note: Why the server's figures are missing, or None.
    """

    release: str
    version: str
    model_line: str
    status: str
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    rollbacks: int = 0
    rolled_back: int = 0
    ready_median_s: float | None = None
    ready_max_s: float | None = None
    last_deployed_at: str | None = None
    last_error: str | None = None
    server: str = "no local server"
    url: str | None = None
    requests: int | None = None
    rate_2xx: float | None = None
    rate_4xx: float | None = None
    rate_5xx: float | None = None
    codes: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    @property
    def success_rate(self) -> float | None:
        """Succeeded / attempted, or None before any attempt."""
        return self.succeeded / self.attempted if self.attempted else None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON values (``success_rate`` included)."""
        return {**asdict(self), "success_rate": self.success_rate}

    def metrics(self) -> dict[str, float]:
        """The row's figures as metrics (what a monitoring record keeps); missing figures left out."""
        values: dict[str, float | int | None] = {
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "rollbacks": self.rollbacks,
            "rolled_back": self.rolled_back,
            "success_rate": self.success_rate,
            "ready_median_s": self.ready_median_s,
            "ready_max_s": self.ready_max_s,
            "requests": self.requests,
            "rate_2xx": self.rate_2xx,
            "rate_4xx": self.rate_4xx,
            "rate_5xx": self.rate_5xx,
            "server_running": None if self.server == "no local server" else float(self.server == "running"),
        }
        return {k: float(v) for k, v in values.items() if v is not None}


@dataclass
class DeploymentReport:
    """Deployment success per release.

    Attributes:
        releases: One row per release, by model line and version.
    """

    releases: list[ReleaseDeployments]

    def to_dict(self) -> dict[str, Any]:
        """``{"releases": [row...]}``: JSON values."""
        return {"releases": [row.to_dict() for row in self.releases]}

    def row(self, release: str) -> ReleaseDeployments:
        """The row of one release.

        Raises:
            KeyError: no row for it.
        """
        for row in self.releases:
            if row.release == release:
                return row
        raise KeyError(release)

    def table(self) -> Any:
        """The rows as a Rich table."""
        from rich.table import Table

        def share(value: float | None) -> str:
            return "" if value is None else f"{value:.1%}"

        def seconds(value: float | None) -> str:
            return "" if value is None else f"{value:.1f} s"

        table = Table(title="Deployment success", caption="rates: the server's answers since it started")
        columns = (
            "release",
            "version",
            "attempted",
            "succeeded",
            "failed",
            "rollbacks",
            "rolled back",
            "ready median",
            "ready max",
            "server",
            "requests",
            "2xx",
            "4xx",
            "5xx",
        )
        for name in columns:
            table.add_column(name, justify="left" if name in ("release", "version", "server") else "right")
        for row in self.releases:
            server = row.server + (f" ({row.note})" if row.note else "")
            table.add_row(
                row.release,
                row.version,
                str(row.attempted),
                str(row.succeeded),
                str(row.failed),
                str(row.rollbacks),
                str(row.rolled_back),
                seconds(row.ready_median_s),
                seconds(row.ready_max_s),
                server,
                "" if row.requests is None else str(row.requests),
                share(row.rate_2xx),
                share(row.rate_4xx),
                share(row.rate_5xx),
            )
        return table


def deployment_success(
    release: str | None = None, *, project: Any = None, timeout_s: float = 2.0
) -> DeploymentReport:
    """Deployment success per release: history counts, time to ready, and the running server's status rates.

    Args:
        release: Only this release (default: every release of the project).
        project: The project; default the one containing the working directory.
        timeout_s: How long to wait for a server's ``/metrics``.

    Returns:
        The report (see the module notes for each figure).

    Raises:
        MonitoringError: an unknown release, or no project.
    """
    from kepler.versioning.project import current
    from kepler.versioning.releases import get_release, list_releases

    try:
        project = current(project)
    except ProjectNotFoundError:
        raise MonitoringError(
            "deployment success reads the releases of a Kepler project; run it inside one"
        ) from None
    every = list_releases(project=project)
    if release is not None:
        try:
            chosen = [get_release(release, project=project)]
        except VersioningError as exc:
            raise MonitoringError(str(exc)) from None
    else:
        chosen = every
    replaced = _rolled_back(every)
    last_at_url = _last_at_url(every)
    rows = []
    for item in chosen:
        row = _history_row(item)
        row.rolled_back = replaced.get(item.release_id, 0)
        _server(row, item, last_at_url, timeout_s)
        rows.append(row)
    return DeploymentReport(rows)


def _history_row(release: Any) -> ReleaseDeployments:
    row = ReleaseDeployments(release.release_id, release.version, release.model_line, release.status)
    ready = []
    for entry in release.history:
        if entry.action in ("deploy", "rollback"):
            row.succeeded += 1
            row.rollbacks += entry.action == "rollback"
            details = entry.details or {}
            seconds = details.get("ready_s")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
                ready.append(float(seconds))
            row.last_deployed_at = details.get("deployed_at") or entry.at
        elif entry.action == "deploy-failed":
            row.failed += 1
            row.last_error = entry.error
    row.attempted = row.succeeded + row.failed
    if ready:
        row.ready_median_s = float(statistics.median(ready))
        row.ready_max_s = max(ready)
    return row


def _rolled_back(releases: list[Any]) -> dict[str, int]:
    """Release -> how many rollbacks replaced it."""
    counts: dict[str, int] = {}
    for release in releases:
        for entry in release.history:
            replaced = (entry.details or {}).get("replaces")
            if entry.action == "rollback" and replaced:
                counts[str(replaced)] = counts.get(str(replaced), 0) + 1
    return counts


def _url(entry: Any) -> str | None:
    """The URL of a local server a history entry started, or None."""
    url = (entry.details or {}).get("url")
    if url is None and isinstance(entry.target, str) and entry.target.startswith("http"):
        url = entry.target
    return str(url) if entry.platform == "local" and url else None


def _last_at_url(releases: list[Any]) -> dict[str, tuple[str, str]]:
    """URL -> (the release last deployed there, when)."""
    last: dict[str, tuple[str, str]] = {}
    for release in releases:
        for entry in release.history:
            url = _url(entry) if entry.action in ("deploy", "rollback") else None
            if url is None:
                continue
            at = str((entry.details or {}).get("deployed_at") or entry.at or "")
            if url not in last or at > last[url][1]:
                last[url] = (release.release_id, at)
    return last


def _server(
    row: ReleaseDeployments, release: Any, last_at_url: dict[str, tuple[str, str]], timeout_s: float
) -> None:
    """Fills the row's server figures from the server it was last deployed to locally."""
    urls = [
        (str((e.details or {}).get("deployed_at") or e.at or ""), _url(e))
        for e in release.history
        if e.action in ("deploy", "rollback") and _url(e)
    ]
    if not urls:
        return
    _, url = max(urls, key=lambda pair: pair[0])
    assert url is not None
    row.url = url
    owner = last_at_url.get(url, (release.release_id, ""))[0]
    if owner != release.release_id:
        row.server = f"serves {owner}"
        row.note = f"{owner} was deployed to {url} after it"
        return
    try:
        text, served = fetch_metrics(url, timeout_s)
    except MonitoringError as exc:
        row.server, row.note = (
            ("not running", None) if "not running" in str(exc) else ("unreadable", str(exc))
        )
        return
    if served is not None and served != release.release_id:
        row.server, row.note = f"serves {served}", f"{url} answers for {served}"
        return
    try:
        counters = parse_metrics(text)
    except MonitoringError as exc:
        row.server, row.note = "unreadable", str(exc)
        return
    row.server = "running"
    row.requests = counters.requests
    row.codes = dict(sorted(counters.codes.items()))
    row.rate_2xx, row.rate_4xx, row.rate_5xx = (counters.rate(c) for c in ("2xx", "4xx", "5xx"))


def fetch_metrics(url: str, timeout_s: float = 2.0) -> tuple[str, str | None]:
    """``GET <url>/metrics``: the text, and the release the answer names in ``X-Kepler-Release`` (or None).

    Raises:
        MonitoringError: nothing answers (``not running``), or the answer is an HTTP error.
    """
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout_s) as answer:
            body = answer.read(16 << 20).decode("utf-8", errors="replace")
            return body, answer.headers.get(RELEASE_HEADER)
    except urllib.error.HTTPError as exc:
        raise MonitoringError(f"{url}/metrics answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError):
        raise MonitoringError(f"{url} is not running") from None

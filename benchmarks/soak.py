"""Soak: Kepler's service under the serving goal's load for minutes, with hostile requests mixed in.

The example model of benchmarks/serve.py (imputation, scaling, one-hot encoding, XGBoost with 100 trees), compiled
and served by the real Kepler service (``kepler.deployment.entry_service:KeplerService``, by default 1 worker (``--setting``), access log off: the
setting of the README's serving figures), gets single-row ``POST /predict_proba`` requests at a fixed rate (open
loop, latency counted from the moment a request was due) for ``--minutes``. A share of them (``--hostile-share``,
5% by default) are hostile: the seed corpus of issue 13 (tests/deploy/hostile.py: lists and objects in cells,
numbers beyond a float, infinity, lone surrogates, bodies that are not tables, requests the HTTP parser refuses),
each of which must get a 4xx.

Server start, model, requests and connections come from benchmarks/serve.py; the scheduler here is its open loop
with two additions: each answer is counted by the kind of request (valid or hostile), and the worker's RSS is
sampled while the load runs.

Goals: no 5xx and no failed request; every valid request answered 200 and every hostile one a 4xx; p99 <= 50 ms;
the worker's RSS grows by at most 10% between the end of the first minute and the end of the run.

Usage:
    python benchmarks/soak.py                  # 10 minutes; writes benchmarks/results/soak.{json,md}
    python benchmarks/soak.py --minutes 0.1    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kepler.runtimes.manifest import read_manifest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "deploy"))

import hostile  # noqa: E402  (tests/deploy/hostile.py: the seed corpus)
import serve  # noqa: E402

GOAL = {"rate": 500.0, "p99_ms": 50.0, "rss_growth": 0.10, "hostile_share": 0.05}
SETTING = "1 worker"
VALID, HOSTILE = "valid", "hostile"
MIX = 2000  # requests in one round of the mix (cycled); 5% of it hostile by default


def status_class(status: int) -> str:
    return "failed" if status == 0 else f"{status // 100}xx"


def mix(
    port: int, records: list[dict[str, Any]], input_schema: dict[str, Any], share: float, seed: int = 0
) -> list[tuple[str, str, bytes]]:
    """(kind, name, raw request) for one round: valid single-row requests with the corpus's hostile ones spread in."""
    valid = serve.prepared_requests(port, records)
    corpus = [
        (name, hostile.request(port, serve.ROUTE, body))
        for name, body in hostile.bodies(input_schema, records[0]).items()
    ]
    corpus += list(hostile.UNPARSABLE_REQUESTS.items())
    hostile_count = round(MIX * share)
    out = [(HOSTILE, *corpus[i % len(corpus)]) for i in range(hostile_count)]
    out += [(VALID, "", valid[i % len(valid)]) for i in range(MIX - hostile_count)]
    random.Random(seed).shuffle(out)
    return out


class RssMeter:
    """RSS of the server's worker processes (BentoML's ``_bentoml_impl.worker.service``) sampled over time, with
    the CPU the machine's other processes used between samples (serve.py's CpuMeter)."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(server_pid)
        self.cpu = serve.CpuMeter(server_pid)
        self.samples: list[
            tuple[float, float]
        ] = []  # (seconds since the load began, MiB summed over workers)
        self.cpu_samples: list[tuple[float, Any]] = []  # (seconds since the load began, CpuMeter snapshot)

    def workers(self) -> list[Any]:
        return [
            p
            for p in self.root.children(recursive=True)
            if any("_bentoml_impl.worker.service" in part for part in p.cmdline())
        ]

    def mib(self) -> float:
        total = 0
        for process in self.workers():
            try:
                total += process.memory_info().rss
            except self._psutil.Error:
                pass
        return round(total / (1 << 20), 1)

    def sample(self, at: float) -> None:
        self.samples.append((round(at, 1), self.mib()))
        self.cpu_samples.append((at, self.cpu.snapshot()))

    def other_cores(self, start: float, end: float) -> float:
        """Cores the machine's other processes used between the samples nearest ``start`` and ``end``."""
        first = min(self.cpu_samples, key=lambda sample: abs(sample[0] - start))[1]
        last = min(self.cpu_samples, key=lambda sample: abs(sample[0] - end))[1]
        return self.cpu.usage(first, last)["other_cores"] if last is not first else float("nan")

    def at(self, seconds: float) -> float:
        """The first sample at or after ``seconds`` (the last one when none is)."""
        return next((m for t, m in self.samples if t >= seconds), self.samples[-1][1])


async def soak(
    port: int,
    requests: list[tuple[str, str, bytes]],
    *,
    seconds: float,
    rate: float,
    connections: int,
    meter: RssMeter,
    sample_s: float,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Open loop at ``rate`` for ``seconds`` (as serve.py's), answers counted by kind, the workers' RSS sampled."""
    total = int(rate * seconds)
    latencies: dict[str, list[float]] = {VALID: [], HOSTILE: []}
    timeline: list[tuple[float, float]] = []  # (when the request was due, s since the start; its latency, s)
    statuses: dict[str, dict[int, int]] = {VALID: {}, HOSTILE: {}}
    by_name: dict[str, dict[int, int]] = {}
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    pool = max(connections, 64)
    start = time.perf_counter() + 0.05
    hard_deadline = start + seconds + serve.OPEN_LOOP_GRACE_S
    done = asyncio.Event()

    async def scheduler() -> None:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((i, start + i / rate))
        for _ in range(pool):
            queue.put_nowait(None)

    async def worker() -> None:
        connection = serve.Connection(port, serve.RECYCLE)
        while (item := await queue.get()) is not None:
            index, due = item
            kind, name, request = requests[index % len(requests)]
            remaining = hard_deadline - time.perf_counter()
            status = await connection.request(request, min(timeout, remaining)) if remaining > 0 else 0
            latencies[kind].append(time.perf_counter() - due)
            timeline.append((due - start, latencies[kind][-1]))
            statuses[kind][status] = statuses[kind].get(status, 0) + 1
            if kind == HOSTILE:
                counts = by_name.setdefault(name, {})
                counts[status] = counts.get(status, 0) + 1
        connection.close()

    async def sampler() -> None:
        while not done.is_set():
            meter.sample(max(0.0, time.perf_counter() - start))
            try:
                await asyncio.wait_for(done.wait(), sample_s)
            except TimeoutError:
                pass
        meter.sample(time.perf_counter() - start)

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(scheduler(), *(worker() for _ in range(pool)))
    elapsed = time.perf_counter() - start
    done.set()
    await sampling
    return {
        "latencies": latencies,
        "statuses": statuses,
        "by_name": by_name,
        "elapsed": elapsed,
        "timeline": timeline,
    }


def classes(statuses: dict[int, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for status, count in sorted(statuses.items()):
        out[status_class(status)] = out.get(status_class(status), 0) + count
    return out


def report(
    outcome: dict[str, Any],
    meter: RssMeter,
    args: argparse.Namespace,
    rss_start: float,
    usage: dict[str, Any],
) -> dict[str, Any]:
    latencies, statuses = outcome["latencies"], outcome["statuses"]
    seconds = args.minutes * 60
    every = serve.summarize(
        latencies[VALID] + latencies[HOSTILE],
        {
            s: statuses[VALID].get(s, 0) + statuses[HOSTILE].get(s, 0)
            for s in set(statuses[VALID]) | set(statuses[HOSTILE])
        },
        seconds,
    )
    valid = serve.summarize(latencies[VALID], statuses[VALID], seconds)
    hostile_figures = serve.summarize(latencies[HOSTILE], statuses[HOSTILE], seconds)
    answered = (
        sum(len(v) for v in latencies.values()) - statuses[VALID].get(0, 0) - statuses[HOSTILE].get(0, 0)
    )
    first_minute = min(60.0, seconds)
    rss = {
        "start_mib": rss_start,
        "after_first_minute_mib": meter.at(first_minute),
        "end_mib": meter.samples[-1][1],
        "peak_mib": max(m for _, m in meter.samples),
        "samples": meter.samples,
    }
    rss["growth_after_first_minute"] = round(rss["end_mib"] / rss["after_first_minute_mib"] - 1, 4)
    by_class = {VALID: classes(statuses[VALID]), HOSTILE: classes(statuses[HOSTILE])}
    hostile_not_4xx = {
        name: {str(s): c for s, c in counts.items()}
        for name, counts in outcome["by_name"].items()
        if any(not 400 <= s < 500 for s in counts)
    }
    checks = {
        "no 5xx": sum(c.get("5xx", 0) for c in by_class.values()) == 0,
        "no failed request": sum(c.get("failed", 0) for c in by_class.values()) == 0,
        "every valid request 200": set(statuses[VALID]) <= {200},
        "every hostile request 4xx": not hostile_not_4xx and set(by_class[HOSTILE]) <= {"4xx"},
        f"p99 <= {GOAL['p99_ms']:g} ms": every["p99_ms"] <= GOAL["p99_ms"],
        f"RSS growth after the first minute <= {GOAL['rss_growth']:.0%}": rss["growth_after_first_minute"]
        <= GOAL["rss_growth"],
        f"throughput >= 98% of {args.rate:g}/s": answered / seconds >= 0.98 * args.rate,
    }
    minutes = []
    for minute in range(max(1, round(seconds / 60))):
        window = [latency for due, latency in outcome["timeline"] if minute * 60 <= due < (minute + 1) * 60]
        if window:
            figures = serve.summarize(window, {}, min(60.0, seconds))
            minutes.append(
                {
                    "minute": minute + 1,
                    "requests": figures["requests"],
                    "p50_ms": figures["p50_ms"],
                    "p99_ms": figures["p99_ms"],
                    "max_ms": figures["max_ms"],
                    "other_cores": round(meter.other_cores(minute * 60, min((minute + 1) * 60, seconds)), 2),
                    "rss_mib": meter.at(min((minute + 1) * 60, seconds)),
                }
            )
    return {
        "machine": serve.machine(),
        "minutes": args.minutes,
        "rate_rps": args.rate,
        "hostile_share": args.hostile_share,
        "setting": args.setting,
        "connections": max(args.connections, 64),
        "throughput_rps": round(answered / seconds, 1),
        "all": every,
        "valid": valid,
        "hostile": hostile_figures,
        "status_classes": by_class,
        "hostile_by_name": {
            name: {str(s): c for s, c in sorted(counts.items())}
            for name, counts in sorted(outcome["by_name"].items())
        },
        "hostile_not_4xx": hostile_not_4xx,
        "rss": rss,
        "by_minute": minutes,
        "server_cpu_ms_per_request": round(1000 * usage["server_cpu_s"] / max(1, answered), 3),
        "client_cores": round(usage["client_cores"], 2),
        "other_cores": round(usage["other_cores"], 2),
        "checks": checks,
        "goal_met": all(checks.values()),
    }


def markdown(result: dict[str, Any]) -> str:
    m, rss = result["machine"], result["rss"]
    lines = [
        "# Soak: Kepler's service for minutes at the serving goal, hostile requests mixed in",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', os.cpu_count())} cores; Python {m['python']}, BentoML "
        f"{m['bentoml']}, onnxruntime {m['onnxruntime']}. The load generator runs on the same cores "
        f'({result["client_cores"]:.2f} cores on average); "other load", CPU used by processes outside the '
        f"benchmark (a shared machine), took {result['other_cores']:.2f} cores on average. The server used "
        f"{result['server_cpu_ms_per_request']:.2f} ms of CPU per request.",
        f"{result['minutes']:g} minutes at {result['rate_rps']:g} single-row requests/s (open loop, "
        f"{result['connections']} connections), {result['hostile_share']:.0%} of them hostile (issue 13's corpus); "
        f"Kepler's service, {result['setting']}, access log off.",
        "",
        "| requests | answered/s | p50 ms | p99 ms | max ms | valid: 2xx / 4xx / 5xx / failed "
        "| hostile: 2xx / 4xx / 5xx / failed |",
        "|---:|---:|---:|---:|---:|---|---|",
    ]
    every, by_class = result["all"], result["status_classes"]

    def counts(kind: str) -> str:
        return " / ".join(str(by_class[kind].get(c, 0)) for c in ("2xx", "4xx", "5xx", "failed"))

    lines.append(
        f"| {every['requests']} | {result['throughput_rps']:.0f} | {every['p50_ms']:.1f} | "
        f"{every['p99_ms']:.1f} | {every['max_ms']:.1f} | {counts(VALID)} | {counts(HOSTILE)} |"
    )
    if len(result["by_minute"]) > 1:
        lines += [
            "",
            'By minute (latency counted for the requests due in that minute; "other load": cores the '
            "machine's other processes used meanwhile):",
            "",
            "| minute | requests | p50 ms | p99 ms | max ms | other load (cores) | worker RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {w['minute']} | {w['requests']} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} | {w['max_ms']:.1f} "
            f"| {w['other_cores']:.2f} | {w['rss_mib']:.1f} |"
            for w in result["by_minute"]
        ]
    lines += [
        "",
        f"Worker RSS: {rss['start_mib']:.1f} MiB at the start, {rss['after_first_minute_mib']:.1f} MiB after the "
        f"first minute, {rss['end_mib']:.1f} MiB at the end (peak {rss['peak_mib']:.1f} MiB): "
        f"{rss['growth_after_first_minute']:+.1%} after the first minute.",
        f"p99 of valid requests alone: {result['valid']['p99_ms']:.1f} ms; of hostile ones: "
        f"{result['hostile']['p99_ms']:.1f} ms.",
        "",
        "Goals: "
        + "; ".join(f"{name}: {'met' if ok else '**not met**'}" for name, ok in result["checks"].items())
        + ".",
    ]
    if result["hostile_not_4xx"]:
        lines.append(f"Hostile requests not answered 4xx: {json.dumps(result['hostile_not_4xx'])}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--rate", type=float, default=GOAL["rate"], help="requests per second")
    parser.add_argument(
        "--hostile-share",
        type=float,
        default=GOAL["hostile_share"],
        help="share of hostile requests (0 to 1)",
    )
    parser.add_argument("--connections", type=int, default=64, help="connections the load spreads over")
    parser.add_argument(
        "--sample-seconds", type=float, default=5.0, help="how often the worker's RSS is sampled"
    )
    parser.add_argument(
        "--setting",
        choices=sorted(serve.SETTINGS),
        default=SETTING,
        help="the service's setting, as benchmarks/serve.py names them",
    )
    parser.add_argument("--output", type=Path, default=serve.RESULTS)
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or not 0 <= args.hostile_share <= 1 or args.sample_seconds <= 0:
        parser.error(
            "--minutes, --rate and --sample-seconds must be positive, --hostile-share between 0 and 1"
        )

    with tempfile.TemporaryDirectory(prefix="kepler-soak-") as tmp:
        workdir = Path(tmp)
        os.environ["BENTOML_HOME"] = str(workdir / "bentoml")
        print("training and compiling the example model...", flush=True)
        ctx: dict[str, Any] = {"workdir": workdir, "bentoml_home": workdir / "bentoml"}
        ctx |= serve.prepare(workdir, quick=True)
        ctx["model_tag"] = serve.store_kepler_model(ctx["artifact"], ctx["bentoml_home"])
        input_schema = read_manifest(ctx["artifact"]).input_schema.to_dict()
        log = workdir / "kepler-soak.log"
        with serve.server_for(
            "kepler", serve.SETTINGS[args.setting], ctx, log, batch_latency_ms=50
        ) as server:
            server.wait_ready()
            serve.load(server.port, ctx["records"], connections=16, seconds=2.0, rate=None)  # warm-up
            meter = RssMeter(server.process.pid)
            rss_start = meter.mib()
            cpu = serve.CpuMeter(server.process.pid)
            before = cpu.snapshot()
            requests = mix(server.port, ctx["records"], input_schema, args.hostile_share)
            print(
                f"soaking for {args.minutes:g} min at {args.rate:g} requests/s, {args.hostile_share:.0%} hostile...",
                flush=True,
            )
            outcome = asyncio.run(
                soak(
                    server.port,
                    requests,
                    seconds=args.minutes * 60,
                    rate=args.rate,
                    connections=args.connections,
                    meter=meter,
                    sample_s=args.sample_seconds,
                )
            )
            usage = cpu.usage(before, cpu.snapshot())
        result = report(outcome, meter, args, rss_start, usage)

    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.output / "soak.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

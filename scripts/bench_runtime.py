#!/usr/bin/env python3
"""Benchmark the single-agent runtime against a bare FastAPI + uvicorn hello app, in the same run.

    .venv/bin/python scripts/bench_runtime.py [--runs 7] [--rounds 5] [--duration 5] [--connections 16]

1. Cold start: process exec -> first 200 on /readyz, for the prepared pixell-kit demo package,
   started as `python -m runtime DIR` and as `par runtime serve DIR`, vs the bare app started as
   `python -m uvicorn` (median of --runs, interleaved so machine noise hits all alike). Wall time
   is the target; the process's CPU time to readiness is printed too, as it barely moves when
   other work shares the machine.
2. Warm POST /invoke with wrk (one worker process each): req/s and p99, vs the bare app's POST,
   alternating between the two servers for --rounds rounds (medians).
3. Idle resident memory (VmRSS) of each after a few requests.
Targets (issue 2): cold start <= 1.25x, req/s >= 70% of the bare app, idle RSS <= 80 MiB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import wrk  # noqa: E402
from tests.support.apkgs import DEMO_AGENT, build_apkg  # noqa: E402
from tests.support.net import free_port  # noqa: E402

BARE_APP = """
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/readyz")
async def readyz():
    return {"ready": True}


@app.post("/invoke")
async def invoke(request: Request):
    return {"message": "Hello from handler", "received": await request.json()}
"""

WRK_POST = """wrk.method = "POST"
wrk.body = '{"x":1}'
wrk.headers["Content-Type"] = "application/json"
"""


RUNTIME = "runtime (python -m runtime)"


def commands(prepared: Path, bare_dir: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "bare fastapi (python -m uvicorn)": [
            py,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--app-dir",
            str(bare_dir),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--no-access-log",
            "--port",
        ],
        RUNTIME: [py, "-m", "runtime", str(prepared), "--port"],
        "runtime (par runtime serve)": [
            str(Path(py).with_name("par")),
            "runtime",
            "serve",
            str(prepared),
            "--port",
        ],
    }


def launch(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*command, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.002)
    raise TimeoutError(url)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: far less sensitive than wall time to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_starts(
    cmds: dict[str, list[str]], env: dict[str, str], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall time and CPU time from exec to the first 200 on /readyz, per command."""
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, command in cmds.items():
            port = free_port()
            started = time.perf_counter()
            proc = launch(command, port, env)
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(cpu_seconds(proc.pid))
            stop(proc)
    return wall, cpu


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def warm(cmds: dict[str, list[str]], env: dict[str, str], args: argparse.Namespace, script: Path) -> dict:
    """Both servers up at once; wrk alternates between them for --rounds rounds (medians reported)."""
    # `par runtime serve` is the same server as `python -m runtime` once started. The rows above log
    # nothing per request (WARNING, like the bare app without its access log); the last row is the
    # runtime as deployed, writing its JSON line per request (to /dev/null here).
    variants = [(name, command, env) for name, command in cmds.items() if "par runtime" not in name]
    variants.append(
        ("runtime, INFO (log line per request)", cmds[RUNTIME], {**env, "PAR_LOG_LEVEL": "INFO"})
    )
    servers = {}
    for name, command, variant_env in variants:
        port = free_port()
        proc = launch(command, port, variant_env)
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc)
        for _ in range(20):
            httpx.post(f"{base}/invoke", json={"x": 1})
        servers[name] = (proc, base)
    time.sleep(1.0)
    results: dict[str, dict] = {
        name: {"rps": [], "p99": [], "idle_rss_mib": rss_mib(proc.pid)} for name, (proc, _) in servers.items()
    }
    for _ in range(args.rounds):
        for name, (_, base) in servers.items():
            report = wrk.run(
                f"{base}/invoke", connections=args.connections, duration=args.duration, threads=1,
                script=str(script),
            )
            results[name]["rps"].append(report.rps)
            results[name]["p99"].append(report.p99_ms)
    for name, (proc, _) in servers.items():
        results[name]["rss_after_load_mib"] = rss_mib(proc.pid)
        stop(proc)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="alternating wrk rounds per server")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: run scripts/services.sh", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp_dir:
        tmp = Path(tmp_dir)
        from runtime.prepare import prepare

        apkg = build_apkg(DEMO_AGENT, tmp, tool="kit")
        prepared = tmp / "prepared"
        prepare(apkg, prepared)
        (tmp / "bare").mkdir()
        (tmp / "bare" / "bare_app.py").write_text(BARE_APP)
        script = tmp / "post.lua"
        script.write_text(WRK_POST)
        env = {
            **os.environ,
            "PAR_RUNTIME_HOST": "127.0.0.1",
            "PAR_LOG_LEVEL": "WARNING",
            "PAR_RUNTIME_WORK_DIR": str(tmp / "work"),
        }
        cmds = commands(prepared, tmp / "bare")
        print(f"load average before: {os.getloadavg()[0]:.2f} (shared machine: figures are relative)")

        wall, cpu = cold_starts(cmds, env, args.runs)
        bare_name = next(iter(cmds))
        for title, samples_by_name in (("wall time", wall), ("CPU time (user+sys)", cpu)):
            bare = statistics.median(samples_by_name[bare_name])
            print(
                f"\nCold start, exec -> first 200 on /readyz, {title}, median of {args.runs} (interleaved):"
            )
            for name, samples in samples_by_name.items():
                median = statistics.median(samples)
                print(
                    f"  {name:34s} {median * 1000:7.0f} ms   ratio {median / bare:4.2f}x   "
                    f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"
                )

        results = warm(cmds, env, args, script)
        base = statistics.median(results[bare_name]["rps"])
        print(
            f"\nWarm POST /invoke, wrk -t1 -c{args.connections} -d{args.duration}s, one worker, "
            f"median of {args.rounds} alternating rounds:"
        )
        for name, r in results.items():
            rps = statistics.median(r["rps"])
            p99 = statistics.median(r["p99"])
            print(
                f"  {name:34s} {rps:8.0f} req/s  ({rps / base:4.0%} of bare)   p99 {p99:7.1f} ms   "
                f"idle RSS {r['idle_rss_mib']:5.1f} MiB   after load {r['rss_after_load_mib']:5.1f} MiB"
            )
            print(f"  {'':34s} rounds: {', '.join(f'{v:.0f}' for v in r['rps'])} req/s")
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

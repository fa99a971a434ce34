"""One-machine platform benchmark (`par up`), each figure next to its baseline from the same run.

    .venv/bin/python scripts/bench_platform.py [--cold 5] [--duration 5] [--rounds 3] [--agents 20]

1. Cold request: POST /invoke through the gateway to a prepared agent scaled to zero (the local
   backend starts `python -m runtime`, waits for /readyz, proxies), against the runtime's own cold
   start (spawn `python -m runtime` on the same prepared folder until its first /invoke answers).
   Interleaved, median of --cold each; target ratio <= 1.5.
2. Warm request: wrk -t1 -c1 --latency on the agent's REST route through the gateway (admin key,
   Host routing, the policy decision, the resolver) and directly on the instance's port; p50
   added, median over --rounds interleaved rounds; target <= 3 ms.
3. Idle memory: --agents agents deployed and scaled to zero; resident memory (VmRSS) of `par up`
   and every process under it, the embedded broker included; target <= 300 MiB.

Everything runs on this machine's shared cores: read the ratios first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import wrk  # noqa: E402
from tests.support.apkgs import DEMO_AGENT, build_apkg  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.platform import ParUp, wait_until  # noqa: E402


def runtime_cold_start(package_dir: Path) -> float:
    """Seconds from spawning `python -m runtime` to its first answered POST /invoke."""
    port = free_port()
    env = {**os.environ, "AGENT_PACKAGE_PATH": str(package_dir), "PORT": str(port),
           "PAR_RUNTIME_HOST": "127.0.0.1"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "runtime"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with httpx.Client() as client:
            while True:
                try:
                    if client.post(f"http://127.0.0.1:{port}/invoke", json={"x": 1}).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("runtime exited during the baseline cold start")
                time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(10)


def gateway_cold_start(platform: ParUp) -> float:
    wait_until(lambda: not platform.agent_pids("demo-agent"), 30, "demo-agent did not scale to zero")
    time.sleep(0.3)
    started = time.perf_counter()
    response = platform.call("demo-agent", json_body={"x": 1})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def wrk_p50_ms(url: str, headers: dict[str, str], duration: int) -> float:
    report = wrk.run(url, connections=1, threads=1, duration=duration, headers=headers)
    if report.non2xx:
        raise RuntimeError(f"wrk against {url} got {report.non2xx} non-2xx answers:\n{report.text}")
    return report.p50_ms


def compare(
    section: str, base: str, base_ms: list[float], other: str, other_ms: list[float]
) -> tuple[float, float]:
    """Print both series with their medians; return the medians."""
    medians = statistics.median(base_ms), statistics.median(other_ms)
    for label, series, median in ((base, base_ms, medians[0]), (other, other_ms, medians[1])):
        print(f"{section}  {label:<16} median {median:9.3f} ms  {[round(x, 3) for x in series]}")
    return medians


def tree_rss_kib(root: int) -> dict[int, int]:
    """VmRSS of `root` and all its descendants, by pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    rss, todo = {}, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        rss[pid] = int(match.group(1)) if match else 0
    return rss


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not installed: run scripts/services.sh")

    work = Path(tempfile.mkdtemp(prefix="bench-platform-"))
    apkg = build_apkg(DEMO_AGENT, work / "apkg", tool="kit")
    platform = ParUp(work / "data", env={"PAR_SCALE_TO_ZERO_AFTER": "1"}).start()
    try:
        deployed = platform.deploy(apkg)
        with platform.registry() as client:
            version = client.get("/v1/namespaces/default/agents/demo-agent/versions/0.1.0").json()
        prepared = platform.data_dir / "prepared" / version["sha256"]
        phase = deployed["status"]["phase"]
        print(f"platform up ({platform.info['gateway_url']}), demo-agent {phase}", flush=True)

        # 1. cold
        runtime_cold, gateway_cold = [], []
        runtime_cold_start(prepared)  # warm the page cache for both sides
        for _ in range(args.cold):
            runtime_cold.append(runtime_cold_start(prepared))
            gateway_cold.append(gateway_cold_start(platform))
        rt, gw = compare("cold", "runtime alone", [x * 1000 for x in runtime_cold],
                         "via gateway", [x * 1000 for x in gateway_cold])
        print(f"cold  ratio {gw / rt:.2f}x (target <= 1.5x)", flush=True)

        # 2. warm (min-scale 1 keeps the instance while wrk calls it directly)
        with platform.registry() as client:
            client.put("/v1/namespaces/default/agents/demo-agent/deployment", json={"min_scale": 1})
        wait_until(lambda: len(platform.agent_pids("demo-agent")) == 1, 30, "not exactly one warm instance")
        assert platform.call("demo-agent", "/api/hello", method="GET").status_code == 200  # ready
        [instance] = platform.instances("demo-agent")
        direct_url = f"http://127.0.0.1:{instance['port']}/api/hello"
        gateway_url = f"{platform.info['gateway_url']}/api/hello"
        headers = {"Host": f"demo-agent.default.{platform.info['domain']}",
                   "Authorization": f"Bearer {platform.admin_key}"}
        direct, through = [], []
        for _ in range(args.rounds):
            direct.append(wrk_p50_ms(direct_url, {}, args.duration))
            through.append(wrk_p50_ms(gateway_url, headers, args.duration))
        d, g = compare("warm", "direct p50", direct, "via gateway p50", through)
        print(f"warm  added p50 {g - d:.3f} ms (target <= 3 ms)", flush=True)
        with platform.registry() as client:
            client.put("/v1/namespaces/default/agents/demo-agent/deployment", json={"min_scale": 0})

        # 3. idle memory with N agents deployed, all scaled to zero
        with platform.registry() as client, apkg.open("rb") as fh:
            for i in range(args.agents - 1):  # demo-agent is the N-th
                fh.seek(0)
                name = f"bench-{i:02d}"
                up = client.post("/v1/namespaces/default/packages", files={"file": (apkg.name, fh)},
                                 data={"name": name})
                assert up.status_code in (200, 201), up.text
                deploy = client.put(f"/v1/namespaces/default/agents/{name}/deployment", json={})
                assert deploy.status_code == 200, deploy.text
        for i in range(args.agents - 1):
            platform.wait_phase(f"bench-{i:02d}", "ready")
        wait_until(lambda: not platform.agent_pids(), 30, "agents still running")
        time.sleep(2)
        rss = tree_rss_kib(platform.pid)
        total = sum(rss.values()) / 1024
        parts = ", ".join(f"{comm(pid)} {kib / 1024:.0f}" for pid, kib in sorted(rss.items()))
        print(f"idle  {args.agents} agents deployed, 0 running: {total:.0f} MiB resident ({parts}) "
              f"(target <= 300 MiB)")
    finally:
        platform.stop()
        platform.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

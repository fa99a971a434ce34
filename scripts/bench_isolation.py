"""Isolation benchmark: what confinement costs, and whether a neighbour notices an attack.

    .venv/bin/python scripts/bench_isolation.py [--duration 8] [--starts 40]

1. Confinement per start, in this process: fork + exit against fork + entering a real instance
   sandbox (cgroups, rlimits, Landlock) + exit, interleaved, medians; and the platform's side
   (private folders and cgroups made and removed) per instance.
2. A neighbour under attack, through `par up`'s gateway: wrk on the neighbour (demo-agent's REST
   route, the default limits) idle, then while the nosy agent (limits memory=256Mi, cpu=500m)
   spins on every core, allocates past its memory limit
   over and over (OOMKilled each time), and forks in a loop. p50/p99 of each phase next to idle
   (target: p99 under attack <= 2x idle), and the gateway's /healthz polled throughout.

Everything runs on this machine's shared cores: read the ratios first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import Limits, RevisionSpec  # noqa: E402
from serving.sandbox import Confiner, enter  # noqa: E402
from tests.support import wrk  # noqa: E402
from tests.support.apkgs import DEMO_AGENT, build_apkg  # noqa: E402
from tests.support.platform import ParUp, wait_until  # noqa: E402

NOSY = ROOT / "tests" / "integration" / "serving" / "nosy-agent"


def fork_ms(child: Callable[[], None]) -> float:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return (time.perf_counter() - started) * 1000


def confinement_cost(starts: int, work: Path) -> None:
    confiner = Confiner(work / "instances", required=False, outbound_ports=(53, 80, 443))
    spec = RevisionSpec("bench", "agent", "0.1.0", work, limits=Limits(memory_bytes=256 << 20))
    plain, confined, platform_side = [], [], []
    for _ in range(starts):
        started = time.perf_counter()
        instance = confiner.confine(spec, 50000)
        platform_side.append((time.perf_counter() - started) * 1000)
        sandbox = instance.sandbox.to_json()
        plain.append(fork_ms(lambda: None))
        confined.append(fork_ms(lambda: enter(sandbox)))  # noqa: B023 - called before the next loop
        started = time.perf_counter()
        instance.release()
        platform_side[-1] += (time.perf_counter() - started) * 1000
    p, c = statistics.median(plain), statistics.median(confined)
    print(f"start  {confiner.describe()}")
    print(f"start  fork+exit {p:.2f} ms, fork+enter sandbox+exit {c:.2f} ms: +{c - p:.2f} ms in the instance")
    made = statistics.median(platform_side)
    print(f"start  platform side (folders, cgroups made and removed) {made:.2f} ms")


class Attack:
    """Sends one kind of attack request over and over from a thread until stopped."""

    def __init__(self, platform: ParUp, body: dict, parallel: int = 1) -> None:
        self.platform, self.body, self.stop = platform, body, threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(parallel)]
        self.sent = 0

    def _run(self) -> None:
        while not self.stop.is_set():
            # An OOM-killed instance breaks its connection: that is the attack working.
            with contextlib.suppress(httpx.HTTPError):
                self.platform.call("nosy-agent", json_body=self.body, timeout=30)
            self.sent += 1

    def __enter__(self) -> Attack:
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # let it bite before measuring
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def watch_health(platform: ParUp, stop: threading.Event, failures: list[str]) -> None:
    while not stop.is_set():
        try:
            if httpx.get(f"{platform.info['gateway_url']}/healthz", timeout=2).status_code != 200:
                failures.append("status")
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)
        time.sleep(0.1)


def neighbour(platform: ParUp, duration: int) -> wrk.WrkReport:
    headers = {"Host": f"demo-agent.default.{platform.info['domain']}",
               "Authorization": f"Bearer {platform.admin_key}"}
    report = wrk.run(f"{platform.info['gateway_url']}/api/hello", connections=2, threads=1,
                     duration=duration, headers=headers)
    if report.non2xx or report.socket_errors:
        print(f"       neighbour errors: {report.non2xx} non-2xx, {report.socket_errors}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--starts", type=int, default=40)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not installed: run scripts/services.sh")
    work = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    confinement_cost(args.starts, work)
    platform = ParUp(work / "data").start()
    failures: list[str] = []
    stop = threading.Event()
    try:
        # The neighbour runs with the platform's defaults (1 CPU, 1Gi); the attacker as deployed
        # with `par deploy --limit memory=256Mi,cpu=500m`.
        platform.deploy(build_apkg(DEMO_AGENT, work / "apkg"), min_scale=1)
        attacker_limits = {"limits": {"memory": "256Mi", "cpu": "500m"}}
        platform.deploy(build_apkg(NOSY, work / "apkg"), min_scale=1, resources=attacker_limits)
        wait_until(lambda: len(platform.agent_pids()) == 2, 60, "both agents warm")
        threading.Thread(target=watch_health, args=(platform, stop, failures), daemon=True).start()
        idle = neighbour(platform, args.duration)
        print(f"neighbour idle            p50 {idle.p50_ms:7.2f} ms  p99 {idle.p99_ms:7.2f} ms")
        attacks = {
            "cpu spin (4 procs)": ({"act": "spin", "seconds": 5, "procs": 4}, 2),
            "memory past limit": ({"act": "alloc", "mb": 600}, 1),
            "fork loop": ({"act": "fork-loop", "count": 5000, "linger": 3}, 1),
        }
        for name, (body, parallel) in attacks.items():
            with Attack(platform, body, parallel) as attack:
                under = neighbour(platform, args.duration)
            print(f"neighbour {name:<18}  p50 {under.p50_ms:7.2f} ms  p99 {under.p99_ms:7.2f} ms  "
                  f"p99 ratio {under.p99_ms / idle.p99_ms:.2f}x (target <= 2x), {attack.sent} attacks")
        status = platform.deployment("nosy-agent")["status"]["message"]
        print(f"attacker status: {status}")
    finally:
        stop.set()
        print(f"platform /healthz failures during the run: {len(failures)} {sorted(set(failures))}")
        platform.stop()
        platform.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

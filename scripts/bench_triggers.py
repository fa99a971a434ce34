"""Triggers benchmark: what Triggers cost an idle `par up`, and how fast it is back after a restart.

    .venv/bin/python scripts/bench_triggers.py [--brokers tansu,kafka] [--counts 0,20,200] [--idle 15]

For each broker (the embedded Tansu `par up` starts, and Apache Kafka 4.x from the jars of
scripts/kafka.sh, started here on loopback and given to `par up` as KAFKA_BOOTSTRAP_SERVERS), one
`par up` with the demo agent deployed, then for each Trigger count (created through the registry API,
each with its own filter, all to one subscriber):

1. new Trigger: from the registry's POST of one more Trigger to its first event at the subscriber
   (the event is sent as soon as the POST returns); target <= 1 s;
2. idle CPU: the platform's processes (`par up` and everything under it, the embedded broker
   included) over --idle seconds, in % of one core; with Kafka, its JVM separately; target < 5 %;
3. restart (counts > 0): `par up` stopped and started again: seconds until the ingress answers 202,
   until `platform.json` is written (every part serving, stored Triggers and deployments applied),
   until the demo agent answers through the gateway, and until every Trigger is Ready; target < 5 s.

Medians are of --rounds restarts. The machine's cores are shared: read the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.eventing.conftest import Recorder, ThreadServer, ce_headers  # noqa: E402
from tests.support.apkgs import DEMO_AGENT, build_apkg  # noqa: E402
from tests.support.kafka import RealKafka, kafka_installed  # noqa: E402
from tests.support.platform import ParUp  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def idle_cpu(platform: ParUp, kafka: RealKafka | None, seconds: float) -> tuple[float, float]:
    """(% of a core used by `par up` and its processes, by the Kafka JVM) over `seconds` of idleness."""
    time.sleep(3)  # what the last change started settles
    pids = [platform.pid, *platform.descendants()]
    jvm = [kafka.process.pid] if kafka and kafka.process else []
    before, before_jvm, started = cpu_seconds(pids), cpu_seconds(jvm), time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    return 100 * (cpu_seconds(pids) - before) / took, 100 * (cpu_seconds(jvm) - before_jvm) / took


def eventing_client(platform: ParUp) -> httpx.Client:
    token = (platform.data_dir / "eventing-admin.token").read_text().strip()
    return httpx.Client(base_url=platform.info["eventing_url"], headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def create_triggers(platform: ParUp, start: int, end: int, sink: str) -> float:
    """Triggers start..end-1 through the registry API; median seconds per POST."""
    took = []
    with platform.registry() as client:
        for i in range(start, end):
            began = time.monotonic()
            response = client.post("/v1/namespaces/default/triggers", json={
                "name": f"idle-{i:03d}", "broker": "default", "filters": {"type": f"bench.idle.{i}"},
                "sink_uri": sink})
            assert response.status_code == 201, response.text
            took.append(time.monotonic() - began)
    return statistics.median(took) if took else 0.0


def new_trigger_delivery(platform: ParUp, sink: Recorder, sink_url: str, n: int) -> float:
    """Seconds from POSTing a new Trigger to its first delivered event."""
    name, event_type = f"probe-{n}", f"bench.probe.{n}"
    before = len(sink.received)
    began = time.monotonic()
    with platform.registry() as client:
        response = client.post("/v1/namespaces/default/triggers", json={
            "name": name, "broker": "default", "filters": {"type": event_type}, "sink_uri": sink_url})
        assert response.status_code == 201, response.text
    ingress = f"{platform.info['eventing_url']}/default/default"
    assert httpx.post(ingress, content=b"{}", headers=ce_headers(f"{name}-1", event_type)).status_code == 202
    sink.wait_for(before + 1, timeout=30)
    took = time.monotonic() - began
    with platform.registry() as client:
        client.delete(f"/v1/namespaces/default/triggers/{name}")
    return took


def restart(platform: ParUp, triggers: int) -> dict[str, float]:
    """Seconds from starting `par up` again until each part of it serves."""
    platform.stop()
    platform.data_dir.joinpath("platform.json").unlink(missing_ok=True)
    began = time.monotonic()
    out: dict[str, float] = {}
    platform.start(timeout=600)
    out["platform.json"] = time.monotonic() - began
    # The ingress port is known only from platform.json: its first 202 comes after, by construction.
    ingress = f"{platform.info['eventing_url']}/default/default"
    while httpx.post(ingress, content=b"{}", headers=ce_headers("restart", "bench.none")).status_code != 202:
        time.sleep(0.02)
    out["ingress 202"] = time.monotonic() - began
    with eventing_client(platform) as client:
        while True:
            items = client.get("/apis/eventing.knative.dev/v1/namespaces/default/triggers").json()["items"]
            ready = [t for t in items if t["status"]["conditions"][0]["status"] == "True"]
            if len(ready) >= triggers:
                break
            time.sleep(0.05)
    out["triggers ready"] = time.monotonic() - began
    while platform.call("demo-agent", "/invoke", json_body={"x": 1}).status_code != 200:
        time.sleep(0.05)
    out["agent answers"] = time.monotonic() - began
    return out


def bench(kind: str, counts: list[int], idle_s: float, rounds: int, apkg: Path, work: Path) -> None:
    kafka = None
    env = {"PAR_SCALE_TO_ZERO_AFTER": "600"}
    if kind == "kafka":
        kafka = RealKafka(work / "kafka")
        kafka.workdir.mkdir()
        kafka.start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    sink = Recorder()
    server = ThreadServer(sink.app()).start()
    platform = ParUp(work / f"data-{kind}", env=env)
    try:
        platform.start(timeout=120)
        platform.deploy(apkg)
        print(f"\n{kind}: par up with demo-agent deployed", flush=True)
        created = 0
        for count in counts:
            per_post = create_triggers(platform, created, count, server.url + "/")
            created = count
            new = [new_trigger_delivery(platform, sink, server.url + "/", count * 10 + i) for i in range(3)]
            cpu, jvm = idle_cpu(platform, kafka, idle_s)
            jvm_text = f", Kafka JVM {jvm:5.1f} %" if kafka else ""
            print(f"  {count:3d} Triggers: idle platform {cpu:5.1f} % of a core{jvm_text} (target < 5 %); "
                  f"new Trigger to first delivery {statistics.median(new):.2f} s (target <= 1 s); "
                  f"registry POST {per_post * 1000:.0f} ms", flush=True)
            if count:
                runs = [restart(platform, count) for _ in range(rounds)]
                figures = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                print("      restart: " + ", ".join(f"{key} {value:.2f} s" for key, value in figures.items())
                      + " (target < 5 s)", flush=True)
    finally:
        platform.stop()
        platform.kill()
        server.stop()
        if kafka:
            kafka.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--brokers", default="tansu,kafka")
    parser.add_argument("--counts", default="0,20,200")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle CPU measurement")
    parser.add_argument("--rounds", type=int, default=3, help="restarts per Trigger count")
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    if "kafka" in brokers and not kafka_installed():
        sys.exit("Apache Kafka not installed: run scripts/kafka.sh")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    work = Path(tempfile.mkdtemp(prefix="bench-triggers-"))
    try:
        apkg = build_apkg(DEMO_AGENT, work / "apkg", tool="kit")
        for kind in brokers:
            bench(kind, [int(c) for c in args.counts.split(",")], args.idle, args.rounds, apkg, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end (shared machine: other work competes for the cores)")


if __name__ == "__main__":
    main()

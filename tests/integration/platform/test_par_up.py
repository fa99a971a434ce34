"""`par up` end to end: a real platform subprocess, real APKGs, real keys, the real broker.

Scale from zero and to zero, eventing from one agent to another, gateway policy, traffic split
and rollback, crash replacement, failed starts; `test_lifecycle.py` covers stop and restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.platform import ParUp, alive, parent, wait_until

from .conftest import IDLE_WINDOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cold_request_wakes_the_agent_and_idle_scales_it_to_zero(
    platform: ParUp, demo_apkg_kit: Path
) -> None:
    deployed = platform.deploy(demo_apkg_kit)
    assert "scaled to zero" in deployed["status"]["message"]
    assert platform.agent_pids("demo-agent") == []

    response = platform.call("demo-agent", json_body={"x": 1})

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Hello from handler", "received": {"x": 1}}
    pids = platform.agent_pids("demo-agent")
    assert len(pids) == 1
    rest = platform.call("demo-agent", "/api/hello", method="GET")
    assert rest.json() == {"message": "Hello from REST"}
    assert platform.agent_pids("demo-agent") == pids  # warm: the same instance served it

    wait_until(lambda: not alive(pids[0]), IDLE_WINDOW + 10, "idle instance not stopped")
    assert platform.agent_pids("demo-agent") == []
    wait_until(
        lambda: "scaled to zero" in platform.deployment("demo-agent")["status"]["message"],
        5, "registry status does not show the agent scaled to zero",
    )


def test_concurrent_cold_requests_share_one_start(platform: ParUp, demo_apkg_kit: Path) -> None:
    platform.deploy(demo_apkg_kit)
    wait_until(lambda: not platform.agent_pids("demo-agent"), IDLE_WINDOW + 10, "agent still warm")

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda i: platform.call("demo-agent", json_body={"i": i}), range(6)))

    assert [r.status_code for r in responses] == [200] * 6
    assert sorted(r.json()["received"]["i"] for r in responses) == list(range(6))
    assert len(platform.agent_pids("demo-agent")) == 1  # target 100: one instance is enough


def test_an_event_emitted_by_one_agent_reaches_another_through_the_broker(
    platform: ParUp, emitter_apkg: Path, receiver_apkg: Path
) -> None:
    platform.deploy(emitter_apkg)
    platform.deploy(receiver_apkg)
    with platform.registry() as client:
        created = client.post("/v1/namespaces/default/triggers", json={
            "name": "greetings", "filters": {"type": "par.demo.greeting"}, "sink_agent": "event-receiver",
        })
        assert created.status_code == 201, created.text
    assert platform.agent_pids("event-receiver") == []

    emitted = platform.call("event-emitter", json_body={"message": "hello B"})

    assert emitted.status_code == 200, emitted.text
    assert emitted.json()["broker_status"] == 202

    def received() -> list[dict]:
        response = platform.call("event-receiver", "/api/received", method="GET")
        assert response.status_code == 200, response.text
        return response.json()["received"]

    events = wait_until(received, 30, "event never reached event-receiver", interval=0.3)
    assert events[-1]["data"] == {"message": "hello B", "from": "event-emitter"}


def test_gateway_policy_with_real_keys(platform: ParUp, demo_apkg_kit: Path) -> None:
    platform.deploy(demo_apkg_kit)
    with platform.registry() as client:
        foreign = client.post("/v1/keys", json={"name": "other team", "tenant": "other"}).json()["key"]
        limited = client.post("/v1/keys", json={"name": "slow", "tenant": "default", "rate": 0.5, "burst": 2})
        limited_key = limited.json()["key"]

    no_key = platform.call("demo-agent", key=None, json_body={})
    assert no_key.status_code == 401

    # The gateway sees new keys with its next registry snapshot (every 2 s).
    forbidden = wait_until(
        lambda: (r := platform.call("demo-agent", key=foreign, json_body={})).status_code != 401 and r,
        10, "the new key never reached the gateway",
    )
    assert forbidden.status_code == 403

    first = wait_until(
        lambda: (r := platform.call("demo-agent", key=limited_key, json_body={})).status_code != 401 and r,
        10, "the rate-limited key never reached the gateway",
    )
    assert first.status_code == 200
    statuses = [platform.call("demo-agent", key=limited_key, json_body={}) for _ in range(4)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, [r.status_code for r in statuses]
    assert int(refused[0].headers["Retry-After"]) >= 1


def test_the_gateway_is_the_edge_for_forwarding_and_response_headers(
    platform: ParUp, headers_apkg: Path
) -> None:
    platform.deploy(headers_apkg)

    response = platform.call(
        "headers-agent", "/api/headers", method="GET", headers={"X-Forwarded-For": "203.0.113.9"}
    )

    assert response.status_code == 200, response.text
    seen = dict(response.json())
    # The client's claim is kept but the gateway appends the peer it really saw: uvicorn did not
    # take the header at face value from a loopback peer and replace the client address with it.
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    # One Date and one Server header, the agent's: the gateway adds none of its own on top.
    assert len(response.headers.get_list("date")) == 1
    assert len(response.headers.get_list("server")) <= 1


def test_one_trace_from_the_client_through_the_gateway_to_the_agent(
    platform: ParUp, headers_apkg: Path
) -> None:
    """W3C Trace Context across par up: the gateway continues the client's trace under its span,
    the agent's runtime under its own, and the response names the runtime's."""
    platform.deploy(headers_apkg)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = platform.call("headers-agent", "/api/headers", method="GET",
                             headers={"traceparent": parent, "tracestate": "v=1", "baggage": "u=1"})
    assert response.status_code == 200, response.text
    seen = dict(response.json())
    gateway_hop = seen["traceparent"].split("-")
    runtime_hop = response.headers["traceparent"].split("-")
    assert gateway_hop[1] == runtime_hop[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len({gateway_hop[2], runtime_hop[2], "00f067aa0ba902b7"}) == 3  # a span id per hop
    assert (seen["tracestate"], seen["baggage"]) == ("v=1", "u=1")


def test_traffic_split_between_versions_then_rollback(
    platform: ParUp, demo_apkg_kit: Path, demo_v2_apkg: Path
) -> None:
    platform.deploy(demo_apkg_kit)
    with platform.registry() as client:
        uploaded = client.post("/v1/namespaces/default/packages", files={"file": demo_v2_apkg.open("rb")})
        assert uploaded.status_code in (200, 201), uploaded.text
        split = client.put("/v1/namespaces/default/agents/demo-agent/traffic", json={"traffic": [
            {"version": "0.1.0", "percent": 50}, {"version": "0.2.0", "percent": 50},
        ]})
        assert split.status_code == 200, split.text
    platform.wait_phase("demo-agent", "ready")

    seen = Counter(platform.call("demo-agent", json_body={}).json()["message"] for _ in range(40))

    assert set(seen) == {"Hello from handler", "Hello from v2"}
    assert min(seen.values()) >= 8  # 50/50 over 40 requests; below 8 has odds under 1e-4

    with platform.registry() as client:
        rolled = client.post("/v1/namespaces/default/agents/demo-agent/rollback")
        assert rolled.status_code == 200, rolled.text
        assert [t["version"] for t in rolled.json()["traffic"]] == ["0.1.0"]
    platform.wait_phase("demo-agent", "ready")

    after = Counter(platform.call("demo-agent", json_body={}).json()["message"] for _ in range(15))
    assert after == {"Hello from handler": 15}


def test_a_killed_instance_is_replaced_and_its_restart_is_visible(
    platform: ParUp, demo_apkg_kit: Path
) -> None:
    platform.deploy(demo_apkg_kit)
    assert platform.call("demo-agent", json_body={}).status_code == 200
    [pid] = platform.agent_pids("demo-agent")

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, "killed instance still there")
    response = platform.call("demo-agent", json_body={"after": "crash"})

    assert response.status_code == 200, response.text
    assert response.json()["received"] == {"after": "crash"}
    assert pid not in platform.agent_pids("demo-agent")
    status = wait_until(
        lambda: "restarts" in ((s := platform.deployment("demo-agent")["status"])["message"] or "") and s,
        5, "restart not visible in the registry's deployment status",
    )
    assert "1 restarts" in status["message"]


def test_a_start_that_fails_answers_502_with_the_reason(platform: ParUp, broken_apkg: Path) -> None:
    platform.deploy(broken_apkg)

    started = time.monotonic()
    response = platform.call("broken-agent", json_body={})

    assert response.status_code == 502
    assert "boom: this agent cannot start" in response.text
    assert time.monotonic() - started < 30
    assert platform.agent_pids("broken-agent") == []
    status = wait_until(
        lambda: (s := platform.deployment("broken-agent")["status"])["phase"] == "failed" and s,
        5, "failed start not visible in the registry",
    )
    assert "boom" in status["message"]


def test_cli_commands_find_the_platform_through_the_data_folder(
    platform: ParUp, demo_apkg_sdk: Path
) -> None:
    env = {**os.environ, "PAR_DATA_DIR": str(platform.data_dir)}
    for name in ("PAR_REGISTRY_URL", "PAR_API_KEY"):
        env.pop(name, None)
    par = [sys.executable, "-c", "from cli.main import main; main()"]

    deployed = subprocess.run([*par, "deploy", str(demo_apkg_sdk), "--name", "demo-sdk"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    assert deployed.returncode == 0, deployed.stderr
    response = platform.call("demo-sdk", json_body={"layout": "sdk"})
    assert response.status_code == 200, response.text
    assert response.json()["received"] == {"layout": "sdk"}

    shown = subprocess.run([*par, "agents", "get", "demo-sdk"],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "ready" in shown.stdout

    invoked = subprocess.run([*par, "invoke", "demo-sdk", "--data", '{"via": "cli"}'],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"message": "Hello from handler", "received": {"via": "cli"}}


def test_agents_still_start_when_the_runtime_template_dies(platform: ParUp, demo_apkg_kit: Path) -> None:
    platform.deploy(demo_apkg_kit)
    assert platform.call("demo-agent", json_body={}).status_code == 200
    [warm] = platform.agent_pids("demo-agent")
    # The template is a child of `par up`; the instances it forks (same command line) are its children.
    templates = [
        pid for pid in platform.descendants()
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes() and parent(pid) == platform.pid
    ]
    assert len(templates) == 1

    os.kill(templates[0], signal.SIGKILL)
    # Forked instances die with the template (PR_SET_PDEATHSIG: no orphans) and are replaced.
    wait_until(lambda: not alive(warm), 5, "instances forked by the template outlived it")
    response = platform.call("demo-agent", json_body={"after": "template"})

    assert response.status_code == 200, response.text
    assert response.json()["received"] == {"after": "template"}


def test_min_scale_keeps_an_instance_warm_without_traffic(platform: ParUp, emitter_apkg: Path) -> None:
    platform.deploy(emitter_apkg, min_scale=1)

    [pid] = wait_until(lambda: platform.agent_pids("event-emitter"), 30, "min-scale 1 started nothing")
    time.sleep(IDLE_WINDOW + 1.5)  # past the idle window: min-scale wins over scale to zero

    assert platform.agent_pids("event-emitter") == [pid]
    platform.deploy(emitter_apkg, min_scale=0)
    wait_until(lambda: not alive(pid), IDLE_WINDOW + 10, "min-scale 0 did not let it scale to zero")


def test_the_platforms_files_are_its_own(platform: ParUp) -> None:
    """Issue 11: no other user (and no agent, which is confined apart) reads keys or the database."""
    assert platform.data_dir.stat().st_mode & 0o777 == 0o700
    for name in ("admin.key", "registry.db", "eventing-admin.token", "platform.json"):
        assert (platform.data_dir / name).stat().st_mode & 0o777 == 0o600, name


def test_the_gateway_holds_a_gateway_key_not_the_admin_key(platform: ParUp) -> None:
    """Issue 17 (least privilege): the internet-facing gateway reads the snapshot with a key that can
    do nothing else; the admin key is not what it holds."""
    gateway_key = (platform.data_dir / "gateway.key").read_text().strip()
    assert (platform.data_dir / "gateway.key").stat().st_mode & 0o777 == 0o600
    assert gateway_key != platform.admin_key
    registry = platform.info["registry_url"]
    auth = {"Authorization": f"Bearer {gateway_key}"}
    assert httpx.get(f"{registry}/v1/gateway/snapshot", headers=auth).status_code == 200
    assert httpx.get(f"{registry}/v1/agents", headers=auth).status_code == 403
    assert httpx.post(f"{registry}/v1/keys", json={"admin": True}, headers=auth).status_code == 403
    ready = httpx.get(f"{platform.info['gateway_url']}/readyz")
    assert ready.status_code == 200, ready.text  # its feed works with that key

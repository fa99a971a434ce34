"""`par up` as a process tree: Ctrl-C/SIGTERM stops every part, a restart on the same data
folder finds its agents again, a SIGKILL leaves no agent or broker behind, and a second
`par up` on a folder already served is refused."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.platform import ParUp, alive, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TRIGGERS = "/apis/eventing.knative.dev/v1/namespaces/default/triggers"


def test_stop_restart_and_kill_leave_no_process_behind(tmp_path: Path, demo_apkg_kit: Path) -> None:
    data = tmp_path / "data"
    first = ParUp(data).start()
    try:
        first.deploy(demo_apkg_kit)
        with first.registry() as client:
            created = client.post("/v1/namespaces/default/triggers", json={
                "name": "kept", "filters": {"type": "par.test.kept"}, "sink_agent": "demo-agent",
            })
            assert created.status_code == 201, created.text
        assert first.call("demo-agent", json_body={"n": 1}).status_code == 200
        tree = first.descendants()  # the broker and the warm agent instance
        assert first.agent_pids("demo-agent") and len(tree) >= 2

        assert first.stop(signal.SIGINT) == 0  # Ctrl-C
        assert [pid for pid in tree if alive(pid)] == []
        assert not (data / "platform.json").exists()
    finally:
        first.kill()

    second = ParUp(data, port=first.port).start()
    try:
        assert second.admin_key == first.admin_key
        response = second.call("demo-agent", json_body={"n": 2})  # no deploy: found again
        assert response.status_code == 200, response.text
        assert response.json()["received"] == {"n": 2}
        # The embedded broker keeps nothing: the registry's trigger reached the new dispatcher.
        token = (data / "eventing-admin.token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        kept = httpx.get(f"{second.info['eventing_url']}{TRIGGERS}/kept", headers=admin, timeout=10)
        assert kept.status_code == 200, kept.text
        assert kept.json()["spec"]["filter"]["attributes"] == {"type": "par.test.kept"}
        tree = second.descendants()
        assert second.agent_pids("demo-agent")

        second.stop(signal.SIGKILL)  # no chance to clean up: the kernel must do it
        wait_until(lambda: not [pid for pid in tree if alive(pid)], 10, "orphans after SIGKILL of par up")
    finally:
        second.kill()


def test_a_second_par_up_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    first = ParUp(tmp_path / "data").start()
    try:
        second = ParUp(tmp_path / "data")
        with pytest.raises(RuntimeError, match="already serves"):
            second.start(timeout=30)
        assert first.call("anything", key=None).status_code == 401  # the first one still serves
    finally:
        first.stop()
        first.kill()


def test_demo_deploys_the_examples_and_their_trigger(tmp_path: Path) -> None:
    demo = ParUp(tmp_path / "data").start("--demo", timeout=180)
    try:
        for agent in ("demo-agent", "event-emitter", "event-receiver"):
            demo.wait_phase(agent, "ready")
        with demo.registry() as client:
            trigger = client.get("/v1/namespaces/default/triggers/greetings")
        assert trigger.status_code == 200, trigger.text
        assert trigger.json()["filters"] == {"type": "par.demo.greeting"}
        assert demo.call("demo-agent", json_body={"x": 1}).json()["received"] == {"x": 1}
        said = demo.output()
        assert "demo: trigger greetings" in said
        assert "demo: deployed demo-agent (0.1.0 100%)" in said, said  # no Python reprs
        assert "{'" not in said and "[{" not in said
    finally:
        demo.stop()
        demo.kill()

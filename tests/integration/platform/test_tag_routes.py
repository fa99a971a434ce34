"""Knative's tag routes on one machine: `{tag}-{agent}.{namespace}.{domain}` reaches that tag's
version through `par up`'s gateway, with the same keys and grants, whatever the traffic split says;
`par agents get` prints each tag's URL."""

from __future__ import annotations

from pathlib import Path

from tests.support.apkgs import demo_variant
from tests.support.platform import ParUp, wait_until

HANDLER = 'def handler(context):\n    return {"version": "%s"}\n'


def test_each_tag_host_reaches_its_version(platform: ParUp, tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0"):
        apkg = demo_variant(tmp_path / version, "tagged-agent", version, HANDLER % version)
        platform.deploy(apkg)
    with platform.registry() as client:
        split = [{"version": "0.1.0", "percent": 0}, {"version": "0.2.0", "percent": 100}]
        response = client.put("/v1/namespaces/default/agents/tagged-agent/traffic", json={"traffic": split})
        assert response.status_code == 200, response.text
    platform.wait_phase("tagged-agent", "ready")

    def answers(agent_label: str) -> str | None:
        response = platform.call(agent_label, json_body={})
        return response.json().get("version") if response.status_code == 200 else None

    # The gateway learns the tags with its next policy snapshot.
    assert wait_until(lambda: answers("v0-1-0-tagged-agent"), 30, "the v0-1-0 tag route") == "0.1.0"
    assert wait_until(lambda: answers("v0-2-0-tagged-agent"), 30, "the v0-2-0 tag route") == "0.2.0"
    assert {answers("tagged-agent") for _ in range(5)} == {"0.2.0"}  # the split: 0 % to 0.1.0

    unknown = platform.call("v9-9-9-tagged-agent", json_body={})
    assert unknown.status_code == 404, unknown.text
    assert platform.call("v0-1-0-tagged-agent", json_body={}, key=None).status_code == 401

    shown = platform.cli("agents", "get", "tagged-agent").stdout
    domain, port = platform.info["domain"], platform.port
    for tag in ("v0-1-0", "v0-2-0"):
        assert f"http://{tag}-tagged-agent.default.{domain}:{port}" in shown, shown

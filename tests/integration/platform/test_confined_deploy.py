"""Issue 11's acceptance as a new user tries it: `par deploy nosy-agent --limit memory=256Mi` on
`par up`, then the hostile agent cannot read the admin key, going over its memory limit kills only
its instance (`par agents get` says OOMKilled), it serves again after, and `par agents get` says
what confines it. The real CLI, the real `par up`, the real kernel mechanisms."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import httpx
import pytest

from serving.cgroups import Cgroups
from serving.landlock import abi
from tests.support.apkgs import ROOT, build_apkg
from tests.support.platform import ParUp, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NOSY = ROOT / "tests" / "integration" / "serving" / "nosy-agent"

if (abi() < 6 or Cgroups.detect() is None) and os.environ.get("CI") != "true":
    reason = (f"this machine lacks what the acceptance needs: Landlock ABI {abi()} (6 wanted) and "
              f"{'a' if Cgroups.detect() else 'no'} cgroup the platform may create")
    pytest.skip(reason, allow_module_level=True)


def test_a_confined_agent_with_a_memory_limit_harms_nobody_but_itself(
    platform: ParUp, tmp_path: Path
) -> None:
    apkg = build_apkg(NOSY, tmp_path)
    deployed = platform.cli("deploy", str(apkg), "--limit", "memory=256Mi")
    assert "nosy-agent 0.1.0 is ready" in deployed.stdout

    def act(**data: object) -> dict:
        response = platform.call("nosy-agent", json_body=data)
        assert response.status_code == 200, response.text
        return dict(response.json())

    stolen = act(act="read", path=str(platform.data_dir / "admin.key"))
    assert stolen["ok"] is False and stolen["errno"] == errno.EACCES, stolen
    assert stolen["error"].startswith("PermissionError")

    first = act(act="whoami")["pid"]
    with pytest.raises(httpx.HTTPError):  # the instance dies mid-request: the connection breaks ...
        response = platform.call("nosy-agent", json_body={"act": "alloc", "mb": 600})
        response.raise_for_status()  # ... or the gateway answers 502 for it

    def oom_shown() -> str | None:
        shown = platform.cli("agents", "get", "nosy-agent").stdout
        return shown if "OOMKilled" in shown else None

    shown = wait_until(oom_shown, 30, "par agents get showing OOMKilled")
    assert "memory limit of 256Mi" in shown

    again = act(act="whoami")  # replaced: the agent serves again
    assert again["ok"] and again["pid"] != first
    shown = json.loads(platform.cli("agents", "get", "nosy-agent", "-o", "json").stdout)
    assert shown["deployment"]["resources"] == {"requests": {}, "limits": {"memory": "256Mi"}}
    table = platform.cli("agents", "get", "nosy-agent").stdout
    assert "confined: filesystem, network, signals, limits" in table
    assert "resources: limits memory=256Mi" in table

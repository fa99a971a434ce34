"""The committed gRPC stubs are what scripts/protos.sh generates from runtime/protos/agent.proto,
and the service keeps the original runtime's names and field numbers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runtime.protos import agent_pb2

ROOT = Path(__file__).parents[3]


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "protos.sh"), str(tmp_path)], check=True, timeout=120)
    for name in ("agent_pb2.py", "agent_pb2.pyi", "agent_pb2_grpc.py"):
        fresh = (tmp_path / "runtime" / "protos" / name).read_text()
        assert fresh == (ROOT / "runtime" / "protos" / name).read_text(), f"run scripts/protos.sh ({name})"


def test_the_originals_service_and_field_numbers() -> None:
    service = agent_pb2.DESCRIPTOR.services_by_name["AgentService"]
    assert service.full_name == "pixell.agent.AgentService"
    assert [m.name for m in service.methods] == ["Health", "DescribeCapabilities", "Invoke", "Ping"]
    numbers = {
        name: {f.name: f.number for f in agent_pb2.DESCRIPTOR.message_types_by_name[name].fields}
        for name in ("HealthStatus", "Capabilities", "ActionRequest", "ActionResult", "Pong")
    }
    assert numbers == {
        "HealthStatus": {"ok": 1, "message": 2, "timestamp": 3},
        "Capabilities": {"methods": 1, "metadata": 2},
        "ActionRequest": {"action": 1, "parameters": 2, "request_id": 3},
        "ActionResult": {"success": 1, "result": 2, "error": 3, "request_id": 4, "duration_ms": 5},
        "Pong": {"message": 1, "timestamp": 2},
    }

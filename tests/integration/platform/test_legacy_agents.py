"""Agents of the original runtime on `par up`: its gRPC service through the platform's gRPC way in
(scale from zero included), and `par migrate` moving a folder of old packages."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from runtime.protos import agent_pb2, agent_pb2_grpc
from tests.support.apkgs import zip_folder
from tests.support.platform import ParUp

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parents[1] / "runtime" / "legacy"


def grpc_address(platform: ParUp) -> str:
    for line in platform.output().splitlines():
        if line.startswith("{") and (entry := json.loads(line)).get("part") == "grpc":
            return entry["address"]
    raise AssertionError(f"par up logged no gRPC address:\n{platform.output()[-2000:]}")


def test_grpc_reaches_an_agent_from_zero(platform: ParUp, tmp_path: Path) -> None:
    deployed = platform.deploy(zip_folder(LEGACY / "original-example", tmp_path / "old-agent.apkg"))
    assert "scaled to zero" in deployed["status"]["message"]
    with grpc.insecure_channel(grpc_address(platform)) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        metadata = [("x-par-agent", "default/example-three-surface-agent")]
        request = agent_pb2.ActionRequest(action="calculate", parameters={"a": "2", "b": "3"})
        result = stub.Invoke(request, metadata=metadata, timeout=60)
        assert result.success and json.loads(result.result)["result"] == 5.0
        assert stub.Health(agent_pb2.Empty(), metadata=[("x-par-agent", "example-three-surface-agent")]).ok
        with pytest.raises(grpc.RpcError) as missing:
            stub.Ping(agent_pb2.Empty(), metadata=[("x-par-agent", "no-such-agent")], timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as unnamed:
            stub.Ping(agent_pb2.Empty(), timeout=10)
        assert unnamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT

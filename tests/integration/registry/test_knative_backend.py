"""The Knative backend against FakeKubeAPI (a fake Kubernetes API server: see its docstring for
what it does and does not model), and the registry driving it end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.backends.base import (
    BackendError,
    BackendRejected,
    DeploymentSpec,
    Phase,
    Scaling,
    TriggerSpec,
    VersionTarget,
)
from registry.backends.knative import KnativeBackend
from registry.settings import RegistrySettings
from tests.support.fake_kube_api import FakeKubeAPI, running_fake_kube_api
from tests.support.net import free_port
from tests.support.registry import run_registry

pytestmark = pytest.mark.integration
SERVING = ("serving.knative.dev", "v1", "services")
SHA = "c" * 64
READY = {
    "url": "http://demo-agent.default.example.com",
    "conditions": [
        {"type": "ConfigurationsReady", "status": "True"},
        {"type": "RoutesReady", "status": "True"},
        {"type": "Ready", "status": "True"},
    ],
}


def wait_until_ready(c: httpx.Client, within: float = 15.0) -> dict:
    """The agent's stored status once `ready` (or the last one seen after `within` seconds)."""
    deadline = time.monotonic() + within
    while True:
        status = c.get("/v1/namespaces/default/agents/demo-agent").json()["status"]
        if status["phase"] == "ready" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeAPI]:
    with running_fake_kube_api() as fake:
        yield fake


@pytest.fixture
def backend(fake_kube: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KnativeBackend:
    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig(tmp_path / "kubeconfig")))
    return KnativeBackend.from_settings(RegistrySettings(data_dir=tmp_path))


def spec(generation: int = 1, max_scale: int = 3) -> DeploymentSpec:
    return DeploymentSpec(
        namespace="default",
        agent="demo-agent",
        versions=(
            VersionTarget(
                version="0.1.0",
                revision="demo-agent-0-1-0",
                percent=100,
                sha256=SHA,
                artifact_url=f"http://registry/v1/artifacts/{SHA}",
                tag="v0-1-0",
            ),
        ),
        scaling=Scaling(max_scale=max_scale),
        k_sink="http://broker/default/default",
        generation=generation,
    )


async def test_deploy_is_a_server_side_apply_by_par_registry(
    backend: KnativeBackend, fake_kube: FakeKubeAPI
) -> None:
    status = await backend.deploy(spec())
    assert status.phase is Phase.deploying and status.generation == 1
    applies = [r for r in fake_kube.requests if r["method"] == "PATCH"]
    assert [r["path"] for r in applies] == [
        "/apis/eventing.knative.dev/v1/namespaces/default/brokers/default",
        "/apis/serving.knative.dev/v1/namespaces/default/services/demo-agent",
    ]
    for r in applies:
        assert r["content_type"].startswith("application/apply-patch+yaml")
        assert r["query"]["fieldManager"] == "par-registry" and r["query"]["force"] == "true"
    service = fake_kube.get(*SERVING, "default", "demo-agent")
    assert service is not None and service["metadata"]["managedFields"][0]["manager"] == "par-registry"
    # Applying the same spec again changes nothing; a new spec is a new generation in place.
    await backend.deploy(spec())
    assert fake_kube.get(*SERVING, "default", "demo-agent")["metadata"]["generation"] == 1
    with pytest.raises(BackendRejected, match="without a name change"):  # Knative's immutability rule
        await backend.deploy(spec(generation=2, max_scale=5))
    renamed = spec(generation=2, max_scale=5)
    renamed = renamed.model_copy(
        update={"versions": (renamed.versions[0].model_copy(update={"revision": "demo-agent-0-1-0-g2"}),)}
    )
    await backend.deploy(renamed)
    again = fake_kube.get(*SERVING, "default", "demo-agent")
    assert again["metadata"]["generation"] == 2
    assert again["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "5"


async def test_watch_follows_conditions_to_ready(backend: KnativeBackend, fake_kube: FakeKubeAPI) -> None:
    await backend.deploy(spec())
    seen = []

    async def follow() -> None:
        async for status in backend.watch("default", "demo-agent", max_wait=20):
            seen.append(status)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    progressing = {
        "conditions": [
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "RevisionMissing",
                "message": "Configuration is waiting for a Revision to become ready.",
            }
        ]
    }
    await asyncio.to_thread(fake_kube.set_status, *SERVING, "default", "demo-agent", progressing)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(fake_kube.set_status, *SERVING, "default", "demo-agent", READY)
    await asyncio.wait_for(task, 15)
    assert [s.phase for s in seen] == [Phase.deploying, Phase.deploying, Phase.ready]
    assert "waiting for a Revision" in (seen[1].message or "")
    assert seen[-1].url == "http://demo-agent.default.example.com"
    assert [c.type for c in seen[-1].conditions] == ["ConfigurationsReady", "RoutesReady", "Ready"]
    assert (await backend.status("default", "demo-agent")).phase is Phase.ready


async def test_failed_revision_is_reported_with_its_reason(
    backend: KnativeBackend, fake_kube: FakeKubeAPI
) -> None:
    await backend.deploy(spec())
    failed = {
        "conditions": [
            {
                "type": "ConfigurationsReady",
                "status": "False",
                "reason": "RevisionFailed",
                "message": 'Revision "demo-agent-0-1-0" failed with message: back-off pulling image',
            },
            {
                "type": "Ready",
                "status": "False",
                "reason": "RevisionFailed",
                "message": 'Revision "demo-agent-0-1-0" failed with message: back-off pulling image',
            },
        ]
    }
    await asyncio.to_thread(fake_kube.set_status, *SERVING, "default", "demo-agent", failed)
    status = await backend.status("default", "demo-agent")
    assert status.phase is Phase.failed
    assert (
        status.message and status.message.startswith("RevisionFailed: ") and "pulling image" in status.message
    )


async def test_undeploy_and_triggers(backend: KnativeBackend, fake_kube: FakeKubeAPI) -> None:
    await backend.deploy(spec())
    await backend.undeploy("default", "demo-agent")
    await backend.undeploy("default", "demo-agent")  # not an error when gone
    assert (await backend.status("default", "demo-agent")).phase is Phase.absent
    trigger = TriggerSpec(
        namespace="default",
        name="on-order",
        filters={"type": "order.created"},
        subscriber_agent="demo-agent",
        ordering="ordered",
    )
    await backend.apply_trigger(trigger)
    stored = fake_kube.get("eventing.knative.dev", "v1", "triggers", "default", "on-order")
    assert stored["spec"]["subscriber"]["ref"]["name"] == "demo-agent"
    await backend.delete_trigger("default", "on-order")
    await backend.delete_trigger("default", "on-order")
    assert fake_kube.get("eventing.knative.dev", "v1", "triggers", "default", "on-order") is None


async def test_api_server_errors_become_backend_errors(
    backend: KnativeBackend, fake_kube: FakeKubeAPI
) -> None:
    fake_kube.fail_with = 500
    with pytest.raises(BackendError, match="500"):
        await backend.deploy(spec())
    fake_kube.fail_with = None
    bad = spec().model_copy(update={"agent": "Not_A_Name"})
    with pytest.raises(BackendRejected, match="422"):  # not a DNS-1123 name: the object is refused
        await backend.deploy(bad)
    from kubernetes import client as k8s

    nowhere = k8s.Configuration()
    nowhere.host = f"http://127.0.0.1:{free_port()}"
    nowhere.retries = 0
    with pytest.raises(BackendError, match="unreachable"):
        await KnativeBackend(k8s.ApiClient(nowhere)).status("default", "x")


def test_registry_deploys_through_knative_and_records_readiness(
    fake_kube: FakeKubeAPI, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    from kubernetes import config as k8s_config

    api = k8s_config.new_client_from_config(config_file=str(fake_kube.kubeconfig(tmp_path / "kubeconfig")))
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    with run_registry(settings, KnativeBackend(api)) as registry, registry.client() as c:
        with demo_apkg_kit.open("rb") as fh:
            sha = c.post("/v1/namespaces/default/packages", files={"file": ("a.apkg", fh)}).json()["sha256"]
        deployed = c.put("/v1/namespaces/default/agents/demo-agent/deployment", json={"max_scale": 2}).json()
        assert deployed["status"]["phase"] == "deploying"
        service = fake_kube.get(*SERVING, "default", "demo-agent")
        env = {e["name"]: e["value"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PACKAGE_URL"] == f"{registry.url}/v1/artifacts/{sha}" and env["PACKAGE_SHA256"] == sha
        time.sleep(0.3)
        fake_kube.set_status(*SERVING, "default", "demo-agent", READY)
        status = wait_until_ready(c)
        assert status == {
            "phase": "ready",
            "url": "http://demo-agent.default.example.com",
            "conditions": [
                {"type": "ConfigurationsReady", "status": "True"},
                {"type": "RoutesReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "message": None,
        }
        # Redeploying the same version with other scaling needs a new revision name on Knative.
        again = c.put("/v1/namespaces/default/agents/demo-agent/deployment", json={"max_scale": 4})
        assert again.status_code == 200, again.text
        assert again.json()["traffic"][0]["revision"] == "demo-agent-0-1-0-g2"
        service = fake_kube.get(*SERVING, "default", "demo-agent")
        assert service["spec"]["template"]["metadata"]["name"] == "demo-agent-0-1-0-g2"
        assert service["spec"]["traffic"][0]["revisionName"] == "demo-agent-0-1-0-g2"
        same = c.put("/v1/namespaces/default/agents/demo-agent/deployment", json={"max_scale": 4}).json()
        assert same["traffic"][0]["revision"] == "demo-agent-0-1-0-g2"  # same configuration, same revision
        assert c.delete("/v1/namespaces/default/agents/demo-agent").status_code == 204
        assert fake_kube.get(*SERVING, "default", "demo-agent") is None


def test_a_restarted_registry_follows_rollouts_again(
    fake_kube: FakeKubeAPI, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    from kubernetes import config as k8s_config

    kubeconfig = str(fake_kube.kubeconfig(tmp_path / "kubeconfig"))
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    with (
        run_registry(
            settings, KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
        ) as r,
        r.client() as c,
        demo_apkg_kit.open("rb") as fh,
    ):
        c.post("/v1/namespaces/default/packages", files={"file": ("a.apkg", fh)})
        assert c.put("/v1/namespaces/default/agents/demo-agent/deployment", json={}).json()["status"][
            "phase"
        ] == ("deploying")
    fake_kube.set_status(*SERVING, "default", "demo-agent", READY)  # became ready while the registry was down
    with (
        run_registry(
            settings, KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
        ) as r,
        r.client() as c,
    ):
        status = wait_until_ready(c)
        assert status["phase"] == "ready" and status["url"] == READY["url"]

"""The Knative backend against a real Kubernetes API server (tests.support.kube_apiserver: etcd,
kube-apiserver v1.34, Knative's CRDs, the registry's shipped RBAC), and the registry driving it.

The backend runs with the registry's own identity, bound only to what `knative/registry/rbac.yaml`
grants. Knative's controller is played through the status subresource with admin credentials.
Two tests keep FakeKubeAPI, for what this server cannot be made to do: Knative's admission webhook
(no Knative webhook runs here) and an API server answering 500 on demand.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from registry.backends.errors import BackendError, BackendRejected, KindNotInstalled, NamespaceMissing
from registry.backends.knative import KnativeBackend
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec, DeploymentStatus, Phase, Scaling, TriggerSpec, VersionTarget
from tests.support.fake_kube_api import FakeKubeAPI, running_fake_kube_api
from tests.support.kube_apiserver import CONTROLLER, KubeAPIServer
from tests.support.net import free_port
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration
PAR = [sys.executable, "-c", "from cli.main import main; main()"]
SERVING = "serving.knative.dev/v1"
SHA = "c" * 64
READY = {
    "url": "http://demo-agent.default.example.com",
    "conditions": [
        {"type": "ConfigurationsReady", "status": "True"},
        {"type": "RoutesReady", "status": "True"},
        {"type": "Ready", "status": "True"},
    ],
}
PROGRESSING = {
    "conditions": [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "RevisionMissing",
            "message": "Configuration is waiting for a Revision to become ready.",
        }
    ]
}


def failed(message: str) -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "ConfigurationsReady",
                "status": "False",
                "reason": "RevisionFailed",
                "message": message,
            },
            {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": message},
        ]
    }


@pytest.fixture
def backend(kube_apiserver: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KnativeBackend:
    """The backend as the registry builds it: KUBECONFIG with the registry's token."""
    monkeypatch.setenv("KUBECONFIG", str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig")))
    return KnativeBackend.from_settings(RegistrySettings(data_dir=tmp_path))


def spec(
    namespace: str, generation: int = 1, max_scale: int = 3, revision: str = "demo-agent-0-1-0"
) -> DeploymentSpec:
    return DeploymentSpec(
        namespace=namespace,
        agent="demo-agent",
        versions=(
            VersionTarget(
                version="0.1.0",
                revision=revision,
                percent=100,
                sha256=SHA,
                artifact_url=f"http://registry/v1/artifacts/{SHA}",
                tag="v0-1-0",
            ),
        ),
        scaling=Scaling(max_scale=max_scale),
        k_sink=f"http://broker/{namespace}/default",
        generation=generation,
    )


async def test_deploy_is_a_server_side_apply_by_par_registry(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    status = await backend.deploy(spec(kube_namespace))
    assert status.phase is Phase.deploying and status.generation == 1 and status.conditions == ()
    service = kube_apiserver.get(SERVING, "services", kube_namespace, "demo-agent")
    broker = kube_apiserver.get("eventing.knative.dev/v1", "brokers", kube_namespace, "default")
    assert service is not None and broker is not None
    for obj in (service, broker):
        assert [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]] == [
            ("par-registry", "Apply")
        ]
    # Applying the same spec again changes nothing; a new spec is a new generation in place.
    await backend.deploy(spec(kube_namespace))
    same = kube_apiserver.get(SERVING, "services", kube_namespace, "demo-agent")
    assert same is not None and same["metadata"]["generation"] == 1
    await backend.deploy(spec(kube_namespace, generation=2, max_scale=5, revision="demo-agent-0-1-0-g2"))
    again = kube_apiserver.get(SERVING, "services", kube_namespace, "demo-agent")
    assert again is not None and again["metadata"]["generation"] == 2
    assert again["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "5"


async def test_a_namespaces_first_agent_fences_it_for_real(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    """NetworkPolicy, ResourceQuota and LimitRange applied with the registry's own (shipped) RBAC;
    the API server's LimitRanger then holds a pod created around the registry to the maximum."""
    await backend.deploy(spec(kube_namespace))
    await backend.deploy(spec(kube_namespace, generation=2))  # once per namespace; again is no change
    with kube_apiserver.client() as admin:
        ns = f"namespaces/{kube_namespace}"
        policy = admin.get(f"/apis/networking.k8s.io/v1/{ns}/networkpolicies/par-agents-ingress").json()
        quota = admin.get(f"/api/v1/{ns}/resourcequotas/par-tenant-quota").json()
        limits = admin.get(f"/api/v1/{ns}/limitranges/par-tenant-limits").json()
        assert policy["spec"]["policyTypes"] == ["Ingress"] and policy["spec"]["podSelector"] == {}
        allowed = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
        wanted = {"kourier-system", "istio-system", "contour-external", "knative-serving", "knative-eventing"}
        assert wanted <= set(allowed["values"])
        assert quota["spec"]["hard"]["limits.memory"] == "40Gi" and quota["spec"]["hard"]["pods"] == "100"
        assert limits["spec"]["limits"][0]["max"] == {"cpu": "4", "memory": "4Gi"}
        managers = {m["manager"] for obj in (policy, quota, limits) for m in obj["metadata"]["managedFields"]}
        assert managers == {"par-registry"}

        def pod(name: str, resources: dict[str, Any]) -> dict[str, Any]:
            container = {"name": "runtime", "image": "par-runtime:test", "resources": resources}
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"containers": [container]}}

        greedy = admin.post(f"/api/v1/{ns}/pods", json=pod("greedy", {"limits": {"memory": "8Gi"}}))
        assert greedy.status_code == 403, greedy.text
        assert "maximum memory usage per Container is 4Gi" in greedy.json()["message"]
        plain = admin.post(f"/api/v1/{ns}/pods", json=pod("plain", {}))
        assert plain.status_code == 201, plain.text
        assert plain.json()["spec"]["containers"][0]["resources"] == {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "256Mi"}
        }


async def test_a_missing_namespace_is_created_with_its_tenant_objects(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer
) -> None:
    """A deploy to a namespace that does not exist was a 503 ("Kubernetes API answered 404:
    namespaces ... not found"); the registry creates it (RBAC: create namespaces), fenced."""
    missing = f"t-{os.urandom(5).hex()}"
    await backend.deploy(spec(missing))
    with kube_apiserver.client() as admin:
        created = admin.get(f"/api/v1/namespaces/{missing}")
        assert created.status_code == 200
        assert created.json()["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "par-registry"
        policies = f"/apis/networking.k8s.io/v1/namespaces/{missing}/networkpolicies"
        policy = admin.get(f"{policies}/par-agents-ingress")
        assert policy.status_code == 200
    assert kube_apiserver.get(SERVING, "services", missing, "demo-agent") is not None


async def test_a_namespace_the_registry_may_not_create_is_a_clear_refusal(
    kube_apiserver: KubeAPIServer, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    """Not allowed to create it: a 422 naming the namespace (not a 503 inviting retries), and the
    agent `par deploy` registered just before is removed again."""
    missing = f"t-{os.urandom(5).hex()}"
    kubeconfig = str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    api = k8s_config.new_client_from_config(config_file=kubeconfig)
    backend = KnativeBackend(api, create_namespaces=False)
    with pytest.raises(NamespaceMissing, match=missing):
        await backend.deploy(spec(missing))
    settings = RegistrySettings(data_dir=tmp_path / "reg", create_namespaces=False)
    with run_registry(settings, backend) as registry, registry.client() as c:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}
        env.update(PAR_REGISTRY_URL=registry.url, PAR_API_KEY=registry.admin_key)
        deployed = await asyncio.to_thread(
            subprocess.run,
            [*PAR, "deploy", str(demo_apkg_kit), "-n", missing],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert deployed.returncode == 1, deployed.stdout + deployed.stderr
        assert f'namespace "{missing}" does not exist' in deployed.stderr
        assert "unavailable" not in deployed.stderr.lower()
        assert c.get(f"/v1/namespaces/{missing}/agents/demo-agent").status_code == 404  # nothing left
        upload(registry, c, missing, demo_apkg_kit)
        refused = c.put(f"/v1/namespaces/{missing}/agents/demo-agent/deployment", json={})
        assert refused.status_code == 422 and "retry-after" not in refused.headers
        assert refused.json()["code"] == "namespace_not_found" and refused.json()["namespace"] == missing


@pytest.fixture
def without_eventing(kube_apiserver: KubeAPIServer) -> Iterator[None]:
    """The API server as on a cluster with Knative Serving only: Eventing's CRDs taken away for
    the test, then put back (Established again) for the others."""
    names = ("brokers.eventing.knative.dev", "triggers.eventing.knative.dev")
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    with kube_apiserver.client() as admin:
        saved = [admin.get(f"{crds}/{name}").json() for name in names]
        for name in names:
            admin.delete(f"{crds}/{name}").raise_for_status()
        deadline = time.monotonic() + 60
        while any(admin.get(f"{crds}/{n}").status_code != 404 for n in names) and time.monotonic() < deadline:
            time.sleep(0.2)
        while admin.get("/apis/eventing.knative.dev/v1").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
    try:
        yield
    finally:
        with kube_apiserver.client() as admin:
            for crd in saved:
                meta = crd["metadata"]
                crd["metadata"] = {"name": meta["name"], "labels": meta.get("labels", {})}
                crd.pop("status", None)
                admin.post(crds, json=crd).raise_for_status()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                served = admin.get("/apis/eventing.knative.dev/v1")
                found = served.json().get("resources", []) if served.status_code == 200 else []
                kinds = {r["kind"] for r in found}
                if {"Broker", "Trigger"} <= kinds:
                    break
                time.sleep(0.2)


async def test_without_knative_eventing_a_deploy_needs_no_broker(
    backend: KnativeBackend,
    kube_apiserver: KubeAPIServer,
    kube_namespace: str,
    without_eventing: None,
    tmp_path: Path,
    demo_apkg_kit: Path,
) -> None:
    """On a Serving-only cluster the first deploy failed on the Kafka Broker (a 503 "Deploy
    backend unavailable"). The agent deploys; a Trigger, which needs Eventing, is refused naming
    the kind and what to install."""
    status = await backend.deploy(spec(kube_namespace))
    assert status.phase is Phase.deploying
    assert kube_apiserver.get(SERVING, "services", kube_namespace, "demo-agent") is not None
    trigger = TriggerSpec(
        namespace=kube_namespace, name="orders", filters={"type": "x"}, subscriber_agent="demo-agent"
    )
    with pytest.raises(KindNotInstalled) as refused:
        await backend.apply_trigger(trigger)
    assert isinstance(refused.value, BackendRejected)
    assert "Broker (eventing.knative.dev/v1) is not installed" in str(refused.value)
    assert "Knative Eventing" in str(refused.value)
    # Through the registry: the first deploy of a new agent is accepted, a Trigger is a 422
    # naming the kind (a 503 "Deploy backend unavailable" invited retrying a permanent error).
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    with run_registry(settings, backend) as registry, registry.client() as c:
        upload(registry, c, kube_namespace, demo_apkg_kit)
        deployed = c.put(f"/v1/namespaces/{kube_namespace}/agents/demo-agent/deployment", json={})
        assert deployed.status_code == 200, deployed.text
        body = {"name": "orders", "filters": {"type": "x"}, "sink_agent": "demo-agent"}
        answer = c.post(f"/v1/namespaces/{kube_namespace}/triggers", json=body)
        assert answer.status_code == 422 and "retry-after" not in answer.headers, answer.text
        assert answer.json()["code"] == "kind_not_installed" and "Broker" in answer.json()["detail"]


async def test_a_crashing_revision_fails_with_its_reason_before_knatives_deadline(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    """Knative keeps a crash-looping revision Unknown for its 600 s progress deadline, longer than
    `par deploy` waits; the pod already says why. The backend reads the revision's pods (with
    the registry's RBAC) and reports the container's termination message as a failed Ready."""
    ns = kube_namespace
    await backend.deploy(spec(ns))
    kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", PROGRESSING)
    refusal = "package refused (entrypoint_unresolved): main:handler: no module named 'main'"
    labels = {"serving.knative.dev/revision": "demo-agent-0-1-0", "serving.knative.dev/service": "demo-agent"}
    containers = [{"name": "runtime", "image": "par-runtime:test"}, {"name": "queue-proxy", "image": "qp"}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-agent-0-1-0-pod", "labels": labels},
           "spec": {"containers": containers}}
    with kube_apiserver.client() as admin:
        path = f"/api/v1/namespaces/{ns}/pods"
        admin.post(path, json=pod).raise_for_status()
        started = time.monotonic()
        seen = []
        async for status in backend.watch(ns, "demo-agent", max_wait=30):
            seen.append(status)
            if len(seen) == 1:  # the rollout as Knative reports it; then the kubelet's word on the pod
                assert status.phase is Phase.deploying
                current = admin.get(f"{path}/demo-agent-0-1-0-pod").json()
                current["status"] = {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "runtime", "image": "par-runtime:test", "imageID": "", "ready": False,
                            "restartCount": 3, "started": False,
                            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                            "lastState": {
                                "terminated": {"exitCode": 3, "reason": "Error", "message": refusal}
                            },
                        },
                        {
                            "name": "queue-proxy", "image": "qp", "imageID": "", "ready": True,
                            "restartCount": 0, "state": {"running": {}},
                        },
                    ],
                }
                admin.put(f"{path}/demo-agent-0-1-0-pod/status", json=current).raise_for_status()
    assert seen[-1].phase is Phase.failed, seen
    assert time.monotonic() - started < 20  # not Knative's 600 s
    assert seen[-1].message is not None and refusal in seen[-1].message
    assert "CrashLoopBackOff" in seen[-1].message and "exit code 3" in seen[-1].message
    ready = next(c for c in seen[-1].conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "CrashLoopBackOff")


async def test_the_registry_identity_has_the_shipped_verbs_only(
    backend: KnativeBackend, kube_namespace: str
) -> None:
    """RBAC is real: what rbac.yaml does not grant is refused (a missing verb would fail the
    other tests the same way)."""
    core = k8s.CoreV1Api(backend.api)
    with pytest.raises(k8s.ApiException) as refused:
        await asyncio.to_thread(core.list_namespaced_secret, kube_namespace)
    assert refused.value.status == 403
    custom = backend.custom
    with pytest.raises(k8s.ApiException) as status_write:  # status belongs to Knative's controller
        await asyncio.to_thread(
            custom.patch_namespaced_custom_object_status,
            "serving.knative.dev",
            "v1",
            kube_namespace,
            "services",
            "demo-agent",
            {"status": {}},
        )
    assert status_write.value.status == 403


async def test_watch_follows_conditions_to_ready(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    await backend.deploy(spec(kube_namespace))
    seen: list[DeploymentStatus] = []

    async def follow() -> None:
        async for status in backend.watch(kube_namespace, "demo-agent", max_wait=20):
            seen.append(status)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    await asyncio.to_thread(
        kube_apiserver.set_status, SERVING, "services", kube_namespace, "demo-agent", PROGRESSING
    )
    await asyncio.sleep(0.5)
    await asyncio.to_thread(
        kube_apiserver.set_status, SERVING, "services", kube_namespace, "demo-agent", READY
    )
    await asyncio.wait_for(task, 15)
    assert [s.phase for s in seen] == [Phase.deploying, Phase.deploying, Phase.ready]
    assert "waiting for a Revision" in (seen[1].message or "")
    assert seen[-1].url == "http://demo-agent.default.example.com"
    assert [c.type for c in seen[-1].conditions] == ["ConfigurationsReady", "RoutesReady", "Ready"]
    assert (await backend.status(kube_namespace, "demo-agent")).phase is Phase.ready


async def test_conditions_of_an_earlier_generation_are_not_reported(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    """`par deploy` printed the previous generation's Ready=True as the new rollout's progress."""
    await backend.deploy(spec(kube_namespace))
    kube_apiserver.set_status(SERVING, "services", kube_namespace, "demo-agent", READY)
    assert (await backend.status(kube_namespace, "demo-agent")).phase is Phase.ready
    second = await backend.deploy(
        spec(kube_namespace, generation=2, max_scale=5, revision="demo-agent-0-1-0-g2")
    )
    assert second.phase is Phase.deploying and second.conditions == () and second.url is None
    kube_apiserver.set_status(SERVING, "services", kube_namespace, "demo-agent", PROGRESSING)
    observed = await backend.status(kube_namespace, "demo-agent")
    assert [(c.type, c.status) for c in observed.conditions] == [("Ready", "Unknown")]


async def test_failed_revision_is_reported_with_its_reason(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    await backend.deploy(spec(kube_namespace))
    message = 'Revision "demo-agent-0-1-0" failed with message: back-off pulling image'
    kube_apiserver.set_status(SERVING, "services", kube_namespace, "demo-agent", failed(message))
    status = await backend.status(kube_namespace, "demo-agent")
    assert status.phase is Phase.failed
    assert (
        status.message and status.message.startswith("RevisionFailed: ") and "pulling image" in status.message
    )


async def test_undeploy_and_triggers(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str
) -> None:
    await backend.deploy(spec(kube_namespace))
    await backend.undeploy(kube_namespace, "demo-agent")
    await backend.undeploy(kube_namespace, "demo-agent")  # not an error when gone
    assert (await backend.status(kube_namespace, "demo-agent")).phase is Phase.absent
    trigger = TriggerSpec(
        namespace=kube_namespace,
        name="on-order",
        filters={"type": "order.created"},
        subscriber_agent="demo-agent",
        ordering="ordered",
    )
    await backend.apply_trigger(trigger)
    stored = kube_apiserver.get("eventing.knative.dev/v1", "triggers", kube_namespace, "on-order")
    assert stored is not None and stored["spec"]["subscriber"]["ref"]["name"] == "demo-agent"
    assert stored["metadata"]["annotations"]["kafka.eventing.knative.dev/delivery.order"] == "ordered"
    await backend.delete_trigger(kube_namespace, "on-order")
    await backend.delete_trigger(kube_namespace, "on-order")
    assert kube_apiserver.get("eventing.knative.dev/v1", "triggers", kube_namespace, "on-order") is None


async def test_refusals_and_an_absent_server_become_backend_errors(
    backend: KnativeBackend, kube_namespace: str
) -> None:
    bad = spec(kube_namespace).model_copy(update={"agent": "Not_A_Name"})
    with pytest.raises(BackendRejected, match="422"):  # not a DNS-1123 name: the object is refused
        await backend.deploy(bad)
    nowhere = k8s.Configuration()
    nowhere.host = f"http://127.0.0.1:{free_port()}"
    nowhere.retries = 0
    with pytest.raises(BackendError, match="unreachable"):
        await KnativeBackend(k8s.ApiClient(nowhere)).status(kube_namespace, "x")


# --- the registry driving the backend --------------------------------------------------------


@pytest.fixture
def registry_backend(kube_apiserver: KubeAPIServer, tmp_path: Path) -> Iterator[KnativeBackend]:
    kubeconfig = kube_apiserver.kubeconfig(tmp_path / "kubeconfig")
    yield KnativeBackend(k8s_config.new_client_from_config(config_file=str(kubeconfig)))


def stored_status(c: httpx.Client, namespace: str, until: Any, within: float = 20.0) -> dict[str, Any]:
    """The agent's stored status once `until(status)` holds (or the last one after `within` s)."""
    deadline = time.monotonic() + within
    while True:
        status = c.get(f"/v1/namespaces/{namespace}/agents/demo-agent").json()["status"]
        if until(status) or time.monotonic() > deadline:
            return dict(status)
        time.sleep(0.1)


def is_ready(status: dict[str, Any]) -> bool:
    return bool(status["phase"] == "ready")


def upload(registry: RunningRegistry, c: httpx.Client, namespace: str, apkg: Path) -> str:
    with apkg.open("rb") as fh:
        answer = c.post(f"/v1/namespaces/{namespace}/packages", files={"file": ("a.apkg", fh)})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["sha256"])


def test_registry_deploys_through_knative_and_records_readiness(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    ns, kubeconfig = kube_namespace, kube_apiserver.kubeconfig(tmp_path / "kubeconfig")
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=str(kubeconfig)))
    with (
        run_registry(RegistrySettings(data_dir=tmp_path / "reg"), backend) as registry,
        registry.client() as c,
    ):
        sha = upload(registry, c, ns, demo_apkg_kit)
        deployed = c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 2}).json()
        assert deployed["status"]["phase"] == "deploying"
        service = kube_apiserver.get(SERVING, "services", ns, "demo-agent")
        assert service is not None
        env = {e["name"]: e["value"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PACKAGE_URL"] == f"{registry.url}/v1/artifacts/{sha}" and env["PACKAGE_SHA256"] == sha
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        assert stored_status(c, ns, is_ready) == {
            "phase": "ready",
            "url": "http://demo-agent.default.example.com",
            "conditions": [
                {"type": "ConfigurationsReady", "status": "True"},
                {"type": "RoutesReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "message": None,
        }
        # Redeploying the same version with other scaling needs a new revision name on Knative,
        # and the answer shows no conditions until Knative has seen the new generation.
        again = c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 4})
        assert again.status_code == 200, again.text
        assert again.json()["traffic"][0]["revision"] == "demo-agent-0-1-0-g2"
        assert again.json()["status"] == {
            "phase": "deploying",
            "url": None,
            "conditions": [],
            "message": None,
        }
        service = kube_apiserver.get(SERVING, "services", ns, "demo-agent")
        assert service is not None
        assert service["spec"]["template"]["metadata"]["name"] == "demo-agent-0-1-0-g2"
        assert service["spec"]["traffic"][0]["revisionName"] == "demo-agent-0-1-0-g2"
        same = c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 4}).json()
        assert same["traffic"][0]["revision"] == "demo-agent-0-1-0-g2"  # same configuration, same revision
        assert c.delete(f"/v1/namespaces/{ns}/agents/demo-agent").status_code == 204
        assert kube_apiserver.get(SERVING, "services", ns, "demo-agent") is None


def test_a_restarted_registry_follows_rollouts_again(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        upload(registry, c, ns, demo_apkg_kit)
        deployed = c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={}).json()
        assert deployed["status"]["phase"] == "deploying"
    kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)  # while the registry was down
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        status = stored_status(c, ns, is_ready)
        assert status["phase"] == "ready" and status["url"] == READY["url"]


# --- what real API servers do: restarts, expired resourceVersions, other field managers -------


def test_a_registry_started_while_the_api_server_is_away_follows_once_it_answers(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    """The registry and the control plane restart together: the resumed watch waits for the API
    server, however long it takes to come back."""
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        upload(registry, c, ns, demo_apkg_kit)
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={})
    kube_apiserver.stop_apiserver()
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        time.sleep(3)  # the resumed watch fails to list for a while
        kube_apiserver.start_apiserver()
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        status = stored_status(c, ns, is_ready, within=60)
        assert status["phase"] == "ready" and status["url"] == READY["url"]


def test_a_restarted_registry_keeps_following_agents_that_were_ready(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    """A failure after Ready reaches a registry that was restarted after the agent was Ready."""
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        upload(registry, c, ns, demo_apkg_kit)
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={})
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        assert stored_status(c, ns, is_ready)["phase"] == "ready"
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with run_registry(settings, backend) as registry, registry.client() as c:
        time.sleep(1)  # the restarted registry's watch is up
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", failed("pod crash-looping"))
        status = stored_status(c, ns, lambda s: s["phase"] == "failed", within=30)
        assert "crash-looping" in status["message"], status


def test_status_converges_after_the_api_server_restarts_mid_rollout(
    kube_apiserver: KubeAPIServer,
    kube_namespace: str,
    tmp_path: Path,
    demo_apkg_kit: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The watch outlives the API server: refused connections are retried with backoff for as
    long as it is away, the resourceVersion it held is gone afterwards (410, listed again), and
    the status Knative writes after the restart reaches the registry without restarting it."""
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    caplog.set_level("INFO", logger="registry.knative")
    with (
        run_registry(RegistrySettings(data_dir=tmp_path / "reg"), backend) as registry,
        registry.client() as c,
    ):
        upload(registry, c, ns, demo_apkg_kit)
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={})
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", PROGRESSING)
        assert stored_status(c, ns, lambda s: s["message"] is not None)["message"] == (
            "Configuration is waiting for a Revision to become ready."
        )
        kube_apiserver.stop_apiserver()
        time.sleep(4)  # longer than three quick client retries: the old watch gave up here for good
        kube_apiserver.start_apiserver()
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        status = stored_status(c, ns, is_ready, within=60)
        assert status["phase"] == "ready", status
        # A second restart after Ready: status keeps following (a revision failing later is seen).
        kube_apiserver.restart()
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", failed("pod crash-looping"))
        status = stored_status(c, ns, lambda s: s["phase"] == "failed", within=60)
        assert status["phase"] == "failed" and "crash-looping" in status["message"], status
    messages = [r.getMessage() for r in caplog.records if r.name == "registry.knative"]
    assert any("retrying with backoff" in m for m in messages), messages
    assert any("resourceVersion expired" in m for m in messages), messages
    assert any(m == "watch resumed" for m in messages), messages
    assert sum("retrying with backoff" in m for m in messages) <= 6, messages  # state changes, not retries
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]  # nor hidden retries


def test_drift_by_another_field_manager_is_reported_not_overwritten(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    path = f"/apis/{SERVING}/namespaces/{ns}/services/demo-agent"
    scale = "autoscaling.knative.dev/max-scale"
    with (
        run_registry(RegistrySettings(data_dir=tmp_path / "reg"), backend) as registry,
        registry.client() as c,
    ):
        upload(registry, c, ns, demo_apkg_kit)
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 2})
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        assert stored_status(c, ns, is_ready)["message"] is None
        # Someone edits the Service by hand (`kubectl edit` is a field manager of its own).
        edit = {"spec": {"template": {"metadata": {"annotations": {scale: "9"}}}}}
        with kube_apiserver.client() as admin:
            answer = admin.patch(
                path,
                json=edit,
                params={"fieldManager": "kubectl-edit"},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert answer.status_code == 200, answer.text
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        status = stored_status(c, ns, lambda s: is_ready(s) and "outside PAR" in (s["message"] or ""))
        assert status["phase"] == "ready", status
        assert status["message"] == (
            "changed outside PAR by kubectl-edit (spec.template.metadata.annotations."
            f"{scale}): left as is until the next deploy re-applies it"
        )
        time.sleep(1)  # the registry does not fight the edit
        service = kube_apiserver.get(SERVING, "services", ns, "demo-agent")
        assert service is not None and service["spec"]["template"]["metadata"]["annotations"][scale] == "9"
        # The next deploy applies PAR's desired state with force: the edit is taken back.
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 3})
        service = kube_apiserver.get(SERVING, "services", ns, "demo-agent")
        assert service is not None and service["spec"]["template"]["metadata"]["annotations"][scale] == "3"
        assert {m["manager"] for m in service["metadata"]["managedFields"]} == {"par-registry", CONTROLLER}
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        assert stored_status(c, ns, is_ready)["message"] is None


def test_par_deploy_prints_the_new_generations_conditions_only(
    kube_apiserver: KubeAPIServer, kube_namespace: str, tmp_path: Path, demo_apkg_kit: Path
) -> None:
    """A redeploy's progress starts from what Knative says of the new generation, not from the
    previous generation's `Ready: True`."""
    ns, kubeconfig = kube_namespace, str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig"))
    backend = KnativeBackend(k8s_config.new_client_from_config(config_file=kubeconfig))
    with (
        run_registry(RegistrySettings(data_dir=tmp_path / "reg"), backend) as registry,
        registry.client() as c,
    ):
        upload(registry, c, ns, demo_apkg_kit)
        c.put(f"/v1/namespaces/{ns}/agents/demo-agent/deployment", json={"max_scale": 2})
        kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)
        assert is_ready(stored_status(c, ns, is_ready))

        def controller() -> None:  # Knative sees the new generation a moment after the apply
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                service = kube_apiserver.get(SERVING, "services", ns, "demo-agent")
                if service is not None and service["metadata"]["generation"] == 2:
                    break
                time.sleep(0.1)
            time.sleep(1.5)
            kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", PROGRESSING)
            time.sleep(1.5)
            kube_apiserver.set_status(SERVING, "services", ns, "demo-agent", READY)

        playing = threading.Thread(target=controller, daemon=True)
        playing.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}
        env.update(PAR_REGISTRY_URL=registry.url, PAR_API_KEY=registry.admin_key)
        args = ["deploy", str(demo_apkg_kit), "--namespace", ns, "--max-scale", "4", "--wait-timeout", "30"]
        deployed = subprocess.run(
            [sys.executable, "-c", "from cli.main import main; main()", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        playing.join(timeout=30)
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    progress = [line.strip() for line in deployed.stderr.splitlines() if line.strip().startswith("Ready:")]
    assert progress == ["Ready: Unknown (RevisionMissing)", "Ready: True"], deployed.stderr


# --- FakeKubeAPI: only what the real server here cannot be made to do ------------------------


@pytest.fixture
def fake_backend(tmp_path: Path) -> Iterator[tuple[KnativeBackend, FakeKubeAPI]]:
    with running_fake_kube_api() as fake:
        kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
        yield KnativeBackend(k8s_config.new_client_from_config(config_file=str(kubeconfig))), fake


async def test_a_knative_webhook_refusal_is_a_rejection(
    fake_backend: tuple[KnativeBackend, FakeKubeAPI],
) -> None:
    """No Knative webhook runs with the real API server: its refusal of a changed template under
    the same revision name comes from the fake."""
    backend, _ = fake_backend
    await backend.deploy(spec("default"))
    with pytest.raises(BackendRejected, match="without a name change"):
        await backend.deploy(spec("default", generation=2, max_scale=5))


async def test_an_api_server_error_is_a_backend_error(
    fake_backend: tuple[KnativeBackend, FakeKubeAPI],
) -> None:
    backend, fake = fake_backend
    fake.fail_with = 500
    with pytest.raises(BackendError, match="500") as raised:
        await backend.deploy(spec("default"))
    assert not isinstance(raised.value, BackendRejected)

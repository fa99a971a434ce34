"""Nothing the registry accepts is refused by Knative, and what Knative would refuse the registry
refuses first (422 naming Knative's field), through the API and `par manifests` offline (issue 13, 2)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.backends.recording import RecordingBackend
from registry.knative import admission, manifests
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec
from tests.integration.registry.test_api import assert_problem, upload
from tests.integration.registry.test_cli import par
from tests.support.knative_defaults import knative_defaulted
from tests.support.kube_schemas import validate_knative
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration
NS = "/v1/namespaces/default"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(RegistrySettings(data_dir=tmp_path / "reg")) as running:
        yield running


def _applied(registry: RunningRegistry) -> list[dict[str, Any]]:
    """The Service objects the registry applied, in order, as the Knative backend would send them."""
    assert isinstance(registry.backend, RecordingBackend)
    options = manifests.options_from(registry.settings)
    specs = [spec for call, spec in registry.backend.calls if call == "deploy"]
    return [manifests.service(spec, options) for spec in specs if isinstance(spec, DeploymentSpec)]


def _as_knative_stores_each(applied: list[dict[str, Any]]) -> None:
    """Replay the applies as a Knative API server would take them: each applied object must already
    be what defaulting makes of it (server-side apply replaces atomic lists such as `containers`
    with what PAR sends), and a template kept under the same revision name must be unchanged (the
    webhook's VerifyNameChange: "Saw the following changes without a name change")."""
    stored: dict[str, Any] | None = None
    for obj in applied:
        validate_knative(obj)
        admission.check_service(obj)
        defaulted = knative_defaulted(obj, create=stored is None)
        assert defaulted == obj
        if stored is not None and obj["spec"]["template"]["metadata"]["name"] == stored["metadata"]["name"]:
            assert defaulted["spec"]["template"] == stored
        stored = copy.deepcopy(defaulted["spec"]["template"])


def test_deploy_redeploy_split_rollback_is_accepted_by_knative_at_every_step(
    reg: RunningRegistry, demo_apkg_kit: Path, demo_apkg_v2: Path
) -> None:
    deployment = f"{NS}/agents/demo-agent/deployment"
    with reg.client() as c:
        upload(c, demo_apkg_kit)
        steps = [
            ("PUT", deployment, {"max_scale": 3}),
            ("PUT", deployment, {}),  # an identical redeploy keeps the revision name
            ("PUT", deployment, {"env": {"GREETING": "hi"}}),  # a changed template gets a new name
        ]
        for method, path, body in steps:
            assert c.request(method, path, json=body).status_code == 200
        upload(c, demo_apkg_v2)
        assert c.put(deployment, json={}).status_code == 200
        split = {"traffic": [{"version": "0.1.0", "percent": 50}, {"version": "0.2.0", "percent": 50}]}
        assert c.put(f"{NS}/agents/demo-agent/traffic", json=split).status_code == 200
        assert c.post(f"{NS}/agents/demo-agent/rollback").status_code == 200
    applied = _applied(reg)
    names = [o["spec"]["template"]["metadata"]["name"] for o in applied]
    assert names == ["demo-agent-0-1-0", "demo-agent-0-1-0", "demo-agent-0-1-0-g3", "demo-agent-0-2-0",
                     "demo-agent-0-2-0", "demo-agent-0-2-0"]
    assert [len(o["spec"]["traffic"]) for o in applied] == [1, 1, 1, 1, 2, 1]
    _as_knative_stores_each(applied)


def test_the_longest_accepted_name_survives_redeploys_and_longer_ones_are_refused(
    reg: RunningRegistry, demo_apkg_kit: Path
) -> None:
    longest = "a" + "-b" * 26 + "c"
    assert len(longest) == 54
    with reg.client() as c:
        assert upload(c, demo_apkg_kit, name=longest).status_code == 201
        for n in range(12):
            r = c.put(f"{NS}/agents/{longest}/deployment", json={"env": {"N": str(n)}})
            assert r.status_code == 200, r.text
        for name in (longest + "d", "x" * 63):
            body = assert_problem(upload(c, demo_apkg_kit, name=name), 422)
            assert "at most 54" in body["detail"]
            body = assert_problem(c.post(f"{NS}/agents", json={"name": name}), 422)
            assert "at most 54" in body["detail"]
    applied = _applied(reg)
    assert len({o["spec"]["template"]["metadata"]["name"] for o in applied}) == 12
    _as_knative_stores_each(applied)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"container_concurrency": 2000}, "spec.template.spec.containerConcurrency",
         "expected 0 <= 2000 <= 1000"),
        ({"min_scale": 3, "max_scale": 1}, "autoscaling.knative.dev/min-scale",
         "max-scale=1 is less than min-scale=3"),
        ({"timeout_seconds": 700}, "spec.template.spec.timeoutSeconds", "expected 0 <= 700 <= 600"),
        ({"timeout_seconds": 4000}, "spec.template.spec.timeoutSeconds", "expected 0 <= 4000 <= 600"),
        ({"max_scale": 2**31}, "autoscaling.knative.dev/max-scale", "expected 0 <= 2147483648 <= 2147483647"),
    ],
)
def test_a_service_knative_would_refuse_is_refused_before_storing(
    reg: RunningRegistry, demo_apkg_kit: Path, body: dict[str, Any], field: str, words: str
) -> None:
    with reg.client() as c:
        upload(c, demo_apkg_kit)
        assert c.put(f"{NS}/agents/demo-agent/deployment", json={"max_scale": 5}).status_code == 200
        problem = assert_problem(c.put(f"{NS}/agents/demo-agent/deployment", json=body), 422)
        assert field in problem["field"] and words in problem["detail"]
        kept = c.get(f"{NS}/agents/demo-agent/deployment").json()
        assert (kept["generation"], kept["max_scale"]) == (1, 5)  # nothing stored
    assert len(_applied(reg)) == 1


def test_an_image_knative_cannot_parse_is_refused(tmp_path: Path, demo_apkg_kit: Path) -> None:
    settings = RegistrySettings(data_dir=tmp_path / "reg", runtime_image="ghcr.io/Pixell/par-runtime:0.1.0")
    with run_registry(settings) as registry, registry.client() as c:
        upload(c, demo_apkg_kit)
        problem = assert_problem(c.put(f"{NS}/agents/demo-agent/deployment", json={}), 422)
        assert problem["field"] == "spec.template.spec.containers[0].image"
        assert "Failed to parse image reference" in problem["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"filters": {"Type": "x"}}, "spec.filter.attributes.Type"),
        ({"delivery": {"retry": -1}}, "spec.delivery.retry"),
        ({"delivery": {"backoffPolicy": "fast"}}, "spec.delivery.backoffPolicy"),
        ({"delivery": {"backoffDelay": "5s"}}, "spec.delivery.backoffDelay"),
    ],
)
def test_a_trigger_knative_would_refuse_is_not_stored(
    reg: RunningRegistry, change: dict[str, Any], field: str
) -> None:
    body = {"name": "orders", "sink_agent": "demo-agent", **change}
    with reg.client() as c:
        problem = assert_problem(c.post(f"{NS}/triggers", json=body), 422)
        assert problem["field"] == field, problem
        assert c.get(f"{NS}/triggers").json()["items"] == []
        assert c.post(f"{NS}/triggers", json={**body, **_valid(change)}).status_code == 201
    assert [call for call, _ in reg.backend.calls] == ["apply_trigger"]  # type: ignore[attr-defined]


def _valid(change: dict[str, Any]) -> dict[str, Any]:
    return {"filters": {"type": "x"}} if "filters" in change else {"delivery": {"retry": 1}}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--concurrency", "2000"], "expected 0 <= 2000 <= 1000: spec.template.spec.containerConcurrency"),
        (["--min-scale", "3", "--max-scale", "1"], "max-scale=1 is less than min-scale=3"),
        (["--image", "not a reference"],
         "Failed to parse image reference: spec.template.spec.containers[0].image"),
        (["--name", "Bad_Name"], "not a DNS 1035 label"),
    ],
)
def test_par_manifests_offline_refuses_what_knative_would(
    demo_apkg_kit: Path, args: list[str], words: str
) -> None:
    result = par(None, "manifests", str(demo_apkg_kit), *args, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert words in result.stderr and "Traceback" not in result.stderr


"""The registry API as its users (the CLI, the gateway, runtimes) rely on it, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from registry.backends.recording import RecordingBackend
from registry.spec import DeploymentSpec, TriggerSpec
from tests.support.apkgs import repack
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration
NS = "/v1/namespaces/default"


def upload(client: httpx.Client, apkg: Path, name: str | None = None) -> httpx.Response:
    with apkg.open("rb") as fh:
        return client.post(
            f"{NS}/packages",
            files={"file": (apkg.name, fh, "application/zip")},
            data={"name": name} if name else {},
        )


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def test_upload_stores_the_package_by_sha256_once(registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    data = demo_apkg_kit.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with registry.client() as c:
        first = upload(c, demo_apkg_kit)
        assert first.status_code == 201, first.text
        body = first.json()
        assert (body["agent"], body["version"], body["sha256"], body["size"]) == (
            "demo-agent",
            "0.1.0",
            sha,
            len(data),
        )
        assert body["manifest"]["name"] == "demo-agent"
        again = upload(c, demo_apkg_kit)
        assert again.status_code == 200 and again.json()["sha256"] == sha
        artifact = httpx.get(body["artifact_url"])  # runtimes fetch without a key
        assert artifact.status_code == 200 and artifact.content == data
        versions = c.get(f"{NS}/agents/demo-agent/versions").json()["items"]
        assert [v["version"] for v in versions] == ["0.1.0"]
    stored = [
        p for p in (registry.settings.data_dir / "artifacts").rglob("*.apkg") if ".incoming" not in p.parts
    ]
    assert [p.name for p in stored] == [f"{sha}.apkg"]


def test_same_version_with_other_bytes_is_a_conflict(
    registry: RunningRegistry, demo_apkg_kit: Path, demo_apkg_sdk: Path
) -> None:
    with registry.client() as c:
        assert upload(c, demo_apkg_kit).status_code == 201
        body = assert_problem(upload(c, demo_apkg_sdk), 409)
        assert "0.1.0" in body["detail"]
        assert len(c.get(f"{NS}/agents/demo-agent/versions").json()["items"]) == 1


def test_bad_packages_get_the_runtime_reason_and_leave_nothing(
    registry: RunningRegistry, demo_apkg_kit: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.apkg"
    junk.write_bytes(b"this is not a zip file")
    slip = repack(demo_apkg_kit, tmp_path / "slip.apkg", extra=[("../../evil.py", b"print('owned')")])
    with registry.client() as c:
        not_zip = assert_problem(upload(c, junk), 422)
        assert not_zip["code"] == "not_a_zip" and "junk.apkg" in not_zip["detail"]
        assert str(registry.settings.data_dir) not in not_zip["detail"]  # no server paths leak
        escaped = assert_problem(upload(c, slip), 422)
        assert escaped["code"] and "evil.py" in escaped["detail"]
        assert c.get("/v1/agents").json()["items"] == []
    leftovers = [p for p in (registry.settings.data_dir / "artifacts").rglob("*") if p.is_file()]
    assert leftovers == []


def test_deploy_hands_the_backend_a_spec_and_reports_ready(
    registry: RunningRegistry, demo_apkg_kit: Path
) -> None:
    with registry.client() as c:
        sha = upload(c, demo_apkg_kit).json()["sha256"]
        for _ in range(2):  # served from the read cache the second time; a change must still show
            assert c.get(f"{NS}/agents/demo-agent").json()["status"]["phase"] == "absent"
        r = c.put(
            f"{NS}/agents/demo-agent/deployment",
            json={"max_scale": 3, "container_concurrency": 2, "env": {"GREETING": "hi"}},
        )
        assert r.status_code == 200, r.text
        dep = r.json()
        assert dep["generation"] == 1 and dep["status"]["phase"] == "ready"
        assert dep["traffic"] == [
            {"version": "0.1.0", "percent": 100, "tag": "v0-1-0", "revision": "demo-agent-0-1-0",
             "url": "http://v0-1-0-demo-agent.default.example.com"}
        ]
        agent = c.get(f"{NS}/agents/demo-agent").json()
        assert agent["status"]["phase"] == "ready"
        assert agent["status"]["url"] == "http://demo-agent.default.example.com"
        assert agent["latest_version"] == "0.1.0"
        # Leaving fields out keeps them; the new generation reaches the backend.
        assert c.put(f"{NS}/agents/demo-agent/deployment", json={"min_scale": 1}).json()["generation"] == 2
    assert isinstance(registry.backend, RecordingBackend)
    spec = registry.backend.deployments[("default", "demo-agent")]
    assert isinstance(spec, DeploymentSpec)
    assert spec.generation == 2
    assert (spec.scaling.min_scale, spec.scaling.max_scale, spec.scaling.container_concurrency) == (1, 3, 2)
    assert spec.env == {"GREETING": "hi"}
    assert spec.versions[0].sha256 == sha
    assert spec.versions[0].artifact_url == f"{registry.url}/v1/artifacts/{sha}"
    assert spec.k_sink == "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/default/default"


def test_traffic_split_validation_and_rollback(
    registry: RunningRegistry, demo_apkg_kit: Path, demo_apkg_v2: Path
) -> None:
    with registry.client() as c:
        upload(c, demo_apkg_kit)
        assert_problem(
            c.put(
                f"{NS}/agents/demo-agent/traffic", json={"traffic": [{"version": "0.1.0", "percent": 100}]}
            ),
            409,
        )  # not deployed
        c.put(f"{NS}/agents/demo-agent/deployment", json={"version": "0.1.0"})
        upload(c, demo_apkg_v2)
        c.put(f"{NS}/agents/demo-agent/deployment", json={"version": "0.2.0"})
        split = c.put(
            f"{NS}/agents/demo-agent/traffic",
            json={"traffic": [{"version": "0.1.0", "percent": 90}, {"version": "0.2.0", "percent": 10}]},
        )
        assert split.status_code == 200, split.text
        assert [(t["version"], t["percent"]) for t in split.json()["traffic"]] == [
            ("0.1.0", 90),
            ("0.2.0", 10),
        ]
        bad_sum = assert_problem(
            c.put(
                f"{NS}/agents/demo-agent/traffic",
                json={"traffic": [{"version": "0.1.0", "percent": 50}, {"version": "0.2.0", "percent": 10}]},
            ),
            422,
        )
        assert "100" in bad_sum["detail"]
        unknown = assert_problem(
            c.put(
                f"{NS}/agents/demo-agent/traffic", json={"traffic": [{"version": "9.9.9", "percent": 100}]}
            ),
            422,
        )
        assert "9.9.9" in unknown["detail"]
        assert [
            (t["version"], t["percent"])
            for t in c.get(f"{NS}/agents/demo-agent/deployment").json()["traffic"]
        ] == [("0.1.0", 90), ("0.2.0", 10)]  # the refused changes left the split alone
        back = c.post(f"{NS}/agents/demo-agent/rollback").json()
        assert [(t["version"], t["percent"]) for t in back["traffic"]] == [("0.2.0", 100)]
        back = c.post(f"{NS}/agents/demo-agent/rollback").json()
        assert [(t["version"], t["percent"]) for t in back["traffic"]] == [("0.1.0", 100)]
        assert_problem(c.post(f"{NS}/agents/demo-agent/rollback"), 409)
    spec = registry.backend.deployments[("default", "demo-agent")]  # type: ignore[attr-defined]
    assert [(v.version, v.percent) for v in spec.versions] == [("0.1.0", 100)]


def test_unknown_things_are_404(registry: RunningRegistry) -> None:
    with registry.client() as c:
        assert_problem(c.get(f"{NS}/agents/nope"), 404)
        assert_problem(c.get(f"{NS}/agents/nope/versions"), 404)
        assert_problem(c.put(f"{NS}/agents/nope/deployment", json={}), 404)
        assert_problem(c.delete(f"{NS}/agents/nope"), 404)
        assert_problem(c.get("/v1/artifacts/" + "0" * 64), 404)
        assert_problem(c.get("/v1/artifacts/..%2F..%2Fadmin.key"), 404)
        assert_problem(c.delete("/v1/keys/000000000000"), 404)


def test_lists_paginate_in_order(registry: RunningRegistry) -> None:
    names = [f"agent-{i:02d}" for i in range(7)]
    with registry.client() as c:
        for name in reversed(names):
            assert c.post(f"{NS}/agents", json={"name": name}).status_code == 201
        assert_problem(c.post(f"{NS}/agents", json={"name": names[0]}), 409)
        assert_problem(c.post(f"{NS}/agents", json={"name": "Bad_Name"}), 422)
        seen, cursor, pages = [], None, 0
        while True:
            page = c.get("/v1/agents", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
            seen += [a["name"] for a in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (names, 3)
        assert_problem(c.get("/v1/agents", params={"cursor": "garbage!"}), 422)


def test_delete_undeploys_and_forgets(registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    with registry.client() as c:
        sha = upload(c, demo_apkg_kit).json()["sha256"]
        c.put(f"{NS}/agents/demo-agent/deployment", json={})
        assert c.delete(f"{NS}/agents/demo-agent").status_code == 204
        assert_problem(c.get(f"{NS}/agents/demo-agent"), 404)
        assert_problem(c.get(f"/v1/artifacts/{sha}"), 404)  # no other version used those bytes
    assert ("undeploy", ("default", "demo-agent")) in registry.backend.calls  # type: ignore[attr-defined]


def test_triggers(registry: RunningRegistry) -> None:
    body = {
        "name": "on-order",
        "broker": "default",
        "filters": {"type": "order.created"},
        "sink_agent": "demo-agent",
        "ordering": "ordered",
    }
    with registry.client() as c:
        assert c.post(f"{NS}/triggers", json=body).status_code == 201
        assert_problem(c.post(f"{NS}/triggers", json=body), 409)
        assert_problem(c.post(f"{NS}/triggers", json={**body, "name": "x", "sink_uri": "http://a"}), 422)
        listed = c.get(f"{NS}/triggers").json()["items"]
        assert [(t["name"], t["filters"]) for t in listed] == [("on-order", {"type": "order.created"})]
        assert c.delete(f"{NS}/triggers/on-order").status_code == 204
        assert_problem(c.get(f"{NS}/triggers/on-order"), 404)
    applied = [call for call in registry.backend.calls if call[0] == "apply_trigger"]  # type: ignore[attr-defined]
    assert isinstance(applied[0][1], TriggerSpec) and applied[0][1].filters == {"type": "order.created"}
    assert ("delete_trigger", ("default", "on-order")) in registry.backend.calls  # type: ignore[attr-defined]


def test_a_visibility_change_keeps_the_revision(registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    """`--cluster-local` is a label of the Service, not of its template: no new revision (no new
    pods, no cold start); another setting of the template still names a new one."""
    with registry.client() as c:
        upload(c, demo_apkg_kit)
        first = c.put(f"{NS}/agents/demo-agent/deployment", json={"max_scale": 3}).json()
        local = c.put(f"{NS}/agents/demo-agent/deployment", json={"cluster_local": True})
        assert local.status_code == 200, local.text
        assert local.json()["traffic"][0]["revision"] == first["traffic"][0]["revision"] == "demo-agent-0-1-0"
        assert isinstance(registry.backend, RecordingBackend)
        assert registry.backend.deployments[("default", "demo-agent")].cluster_local is True
        scaled = c.put(f"{NS}/agents/demo-agent/deployment", json={"max_scale": 4}).json()
        assert scaled["traffic"][0]["revision"] == "demo-agent-0-1-0-g3"


def test_manifests_of_a_deployed_agent(registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    with registry.client() as c:
        upload(c, demo_apkg_kit)
        assert_problem(c.get(f"{NS}/agents/demo-agent/manifests"), 409)
        c.put(f"{NS}/agents/demo-agent/deployment", json={})
        c.post(f"{NS}/triggers", json={"name": "t1", "filters": {"type": "x"}, "sink_agent": "demo-agent"})
        r = c.get(f"{NS}/agents/demo-agent/manifests")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    kinds = [o["kind"] for o in yaml.safe_load_all(r.text)]
    assert kinds == ["Broker", "Service", "Trigger"]


def test_keys_and_the_gateway_snapshot(registry: RunningRegistry) -> None:
    with registry.client() as c:
        first = c.get("/v1/gateway/snapshot")
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.strip('"') == first.json()["revision"]
        assert c.get("/v1/gateway/snapshot", headers={"If-None-Match": etag}).status_code == 304
        assert (
            c.get("/v1/gateway/snapshot", headers={"If-None-Match": first.json()["revision"]}).status_code
            == 304
        )
        created = c.post("/v1/keys", json={"tenant": "team-a", "rate": 5, "burst": 10}).json()
        assert created["key"].startswith(f"par_{created['id']}_") and created["grants"] == ["team-a/*"]
        c.post(f"{NS}/agents", json={"name": "pub", "public": True, "rate": 1.5, "burst": 3})
        snap = c.get("/v1/gateway/snapshot", headers={"If-None-Match": etag})
        assert snap.status_code == 200 and snap.json()["revision"] != first.json()["revision"]
        body = snap.json()
        key = next(k for k in body["keys"] if k["id"] == created["id"])
        assert key == {
            "id": created["id"],
            "hash": hashlib.sha256(created["key"].encode()).hexdigest(),
            "tenant": "team-a",
            "admin": False,
            "grants": ["team-a/*"],
            "rate": 5.0,
            "burst": 10,
            "revoked": False,
            "expires_at": None,
        }
        assert "key" not in key
        assert body["agents"] == [
            {"namespace": "default", "name": "pub", "public": True, "rate": 1.5, "burst": 3, "tags": []}
        ]
        # A non-admin key is refused by the registry (403); once revoked it is unknown to it (401).
        with registry.client(created["key"]) as user:
            assert_problem(user.get("/v1/agents"), 403)
        assert c.delete(f"/v1/keys/{created['id']}").json()["revoked"] is True
        with registry.client(created["key"]) as user:
            assert_problem(user.get("/v1/agents"), 401)
        revoked = next(k for k in c.get("/v1/gateway/snapshot").json()["keys"] if k["id"] == created["id"])
        assert revoked["revoked"] is True
        ids = [k["id"] for k in c.get("/v1/keys", params={"limit": 1}).json()["items"]]
        assert len(ids) == 1
        # An expired admin key is refused.
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        expired = c.post("/v1/keys", json={"admin": True, "expires_at": past}).json()
        with registry.client(expired["key"]) as old:
            assert "expired" in assert_problem(old.get("/v1/agents"), 401)["detail"]
    with httpx.Client(base_url=registry.url) as anonymous:
        assert_problem(anonymous.get("/v1/gateway/snapshot"), 401)
        assert_problem(anonymous.get("/v1/agents", headers={"Authorization": "Bearer par_nope"}), 401)


def test_admin_key_is_created_once_with_mode_0600(registry: RunningRegistry) -> None:
    key_file = registry.settings.data_dir / "admin.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert registry.announced == [registry.admin_key]
    with run_registry(registry.settings) as again:  # same data and database: nothing new
        assert again.announced == []
        with again.client(registry.admin_key) as c:
            assert c.get("/v1/agents").status_code == 200


def test_par_admin_key_overrides(registry_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gateway.apikeys import generate_key

    _, key = generate_key()
    settings = registry_settings.model_copy(update={"admin_key": key})
    with run_registry(settings) as running:
        assert running.announced == []
        assert not (settings.data_dir / "admin.key").exists()
        with running.client(key) as c:
            assert c.get("/v1/agents").status_code == 200


def test_deploy_refuses_bad_settings_and_changes_nothing(
    registry: RunningRegistry, demo_apkg_kit: Path
) -> None:
    with registry.client() as c:
        upload(c, demo_apkg_kit)
        for body in (
            {"env": {"PORT": "9000"}},
            {"env": {"PACKAGE_URL": "http://elsewhere/x.apkg"}},
            {"env": {"not a name": "x"}},
            {"timeout_seconds": 3600},
            {"min_scale": -1},
            {"version": "9.9.9"},
        ):
            assert c.put(f"{NS}/agents/demo-agent/deployment", json=body).status_code in (404, 422), body
        assert_problem(c.get(f"{NS}/agents/demo-agent/deployment"), 404)
    assert registry.backend.calls == []  # type: ignore[attr-defined]


def test_deploy_resources_reach_the_backend_and_too_much_is_refused_naming_the_field(
    registry: RunningRegistry, demo_apkg_kit: Path
) -> None:
    path = f"{NS}/agents/demo-agent/deployment"
    with registry.client() as c:
        upload(c, demo_apkg_kit)
        over = assert_problem(c.put(path, json={"resources": {"limits": {"memory": "64Gi"}}}), 422)
        assert (over["code"], over["field"]) == ("resources_over_maximum", "resources.limits.memory")
        assert "PAR_MAX_MEMORY_LIMIT" in over["detail"]
        inverted = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
        refused = assert_problem(c.put(path, json={"resources": inverted}), 422)
        assert (refused["code"], refused["field"]) == ("request_over_limit", "resources.requests.cpu")
        bad = assert_problem(c.put(path, json={"resources": {"limits": {"memory": "lots"}}}), 422)
        assert bad["code"] == "invalid_request"
        assert c.put(path, json={"resources": {"limits": {"gpu": "1"}}}).status_code == 422
        assert registry.backend.calls == []  # type: ignore[attr-defined]

        asked = {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "128Mi", "cpu": "100m"}}
        deployed = c.put(path, json={"resources": asked})
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["resources"] == asked
        spec = registry.backend.deployments[("default", "demo-agent")]  # type: ignore[attr-defined]
        assert spec.resources.limits == {"memory": "256Mi", "cpu": "500m"}
        # As kn's --limit: a value named replaces, the others stay; null goes back to the default.
        changed = c.put(path, json={"resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": None}}})
        assert changed.json()["resources"] == {
            "limits": {"memory": "512Mi", "cpu": "500m"}, "requests": {"memory": "128Mi"}
        }
        assert c.put(path, json={"min_scale": 1}).json()["resources"]["limits"]["memory"] == "512Mi"
        assert c.get(path).json()["resources"]["limits"] == {"memory": "512Mi", "cpu": "500m"}
        # A new configuration is a new revision (Knative revisions are immutable).
        assert changed.json()["traffic"][0]["revision"] != deployed.json()["traffic"][0]["revision"]

"""knative/eventing/dead-letters.yaml: the dead-letter store as a Service, runnable as written."""

from __future__ import annotations

from typer.testing import CliRunner

from eventing.cli import app
from tests.support.dockerfile import knative_objects
from tests.support.kube_schemas import validate_core


def _objects() -> dict[str, dict]:
    return {o["kind"]: o for o in knative_objects("eventing")
            if o["metadata"]["name"] in ("par-dead-letters", "par-system")}


def test_the_store_service_validates_and_reaches_the_container() -> None:
    objects = _objects()
    assert set(objects) == {"Namespace", "PersistentVolumeClaim", "Deployment", "Service"}
    for obj in objects.values():
        validate_core(obj)
    assert objects["Namespace"] == next(o for o in knative_objects("registry") if o["kind"] == "Namespace")
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] in [p["name"] for p in container["ports"]]
    assert objects["Service"]["spec"]["selector"].items() <= objects["Deployment"]["spec"]["template"][
        "metadata"]["labels"].items()
    # the SQLite file lives on the claim; the root filesystem is read-only
    command = container["command"]
    store = command[command.index("--store") + 1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert any(store.startswith(mounts[name] + "/") for name in claims)
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]


def test_the_command_is_one_par_runs() -> None:
    (container,) = _objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:4] == ["par", "eventing", "dlq", "serve"]
    result = CliRunner().invoke(app, [*command[2:], "--help"])
    assert result.exit_code == 0, result.output
    for option in (c for c in command[4:] if c.startswith("--")):
        assert option in result.output


def test_the_token_secret_is_required() -> None:
    """Fail closed: without its Secret the pod does not start, rather than serving every event
    payload to anyone in the cluster (issue 17)."""
    (container,) = _objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    (token,) = [e for e in container["env"] if e["name"] == "PAR_EVENTING_ADMIN_TOKEN"]
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "par-dead-letters" and not ref.get("optional", False)
    assert "--insecure-no-auth" not in container["command"]

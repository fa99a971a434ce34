"""scripts/kind-up.sh, checked without a cluster: valid bash (shellcheck-clean when shellcheck is
installed), applying knative/ folders that exist in an order that works, building the images the
manifests name from the Dockerfile targets that produce them, and wiring the registry's database
URL to the dev PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.support.dockerfile import IMAGE_TARGETS, ROOT, knative_objects, parse

SCRIPT = ROOT / "scripts" / "kind-up.sh"
TEXT = SCRIPT.read_text()


def _variable(name: str) -> str:
    match = re.search(rf'^{name}="(?:\$\{{[A-Z_]+:-)?([^"}}]+)', TEXT, re.MULTILINE)
    assert match, name
    return match.group(1)


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (dev check)")
def test_shellcheck_clean() -> None:
    subprocess.run(["shellcheck", str(SCRIPT)], check=True)


def test_applies_existing_kustomizations_after_what_they_need() -> None:
    applied = re.findall(r'apply -k "\$ROOT/(knative/[\w/-]+)"', TEXT)
    assert {"knative/dev", "knative/eventing", "knative/registry", "knative/gateway/kourier"} <= set(applied)
    for folder in applied:
        assert (ROOT / folder / "kustomization.yaml").is_file(), folder
    position = {folder: TEXT.index(f'"$ROOT/{folder}"') for folder in applied}
    # kafka-broker-config: the Kafka broker's release ships a placeholder that ours must replace;
    # the Kafka and KafkaNodePool kinds need Strimzi's CRDs.
    assert TEXT.index("eventing-kafka-controller.yaml") < position["knative/eventing"]
    assert TEXT.index("crd/kafkas.kafka.strimzi.io") < position["knative/eventing"]
    # The registry's secret names the database that knative/dev runs.
    assert position["knative/dev"] < position["knative/registry"] < position["knative/gateway/kourier"]
    for patch in re.findall(r'--patch-file "\$ROOT/([\w/.-]+)"', TEXT):
        assert (ROOT / patch).is_file(), patch


def test_builds_each_image_from_the_target_that_makes_it() -> None:
    builds = re.findall(r'docker build --target (\S+) -t "\$(\w+)"', TEXT)
    built = {_variable(var).rsplit(":", 1)[0]: target for target, var in builds}
    assert built == IMAGE_TARGETS
    _, stages = parse()
    assert set(built.values()) <= set(stages)
    loaded = re.search(r"kind load docker-image .*", TEXT)
    assert loaded and all(f'"${var}"' in loaded.group(0) for _, var in builds)


def test_database_url_reaches_the_dev_postgres() -> None:
    url = re.search(r'DATABASE_URL="postgresql://(\w+):\$\{PG_PASSWORD\}@([\w.-]+):(\d+)/(\w+)"', TEXT)
    assert url, "DATABASE_URL secret not found"
    user, host, port, database = url.groups()
    objects = knative_objects("dev")
    (service,) = [
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == host.split(".")[0]
    ]
    assert (
        host == f"{service['metadata']['name']}.par-system"
        and int(port) == service["spec"]["ports"][0]["port"]
    )
    (postgres,) = [o for o in objects if o["kind"] == "StatefulSet"]
    env = {e["name"]: e.get("value") for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (user, database)


def test_progress_counter_matches_the_steps() -> None:
    counter = re.search(r"\[%d/(\d+) ", TEXT)
    assert counter, "no progress counter"
    total = int(counter.group(1))
    assert TEXT.count('\nstep "') == total


def test_knative_domain_is_the_one_the_gateway_routes_by() -> None:
    (gateway,) = [o for o in knative_objects("gateway/base") if o["kind"] == "Deployment"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert _variable("DOMAIN") == env["PAR_GATEWAY_DOMAIN"]
    assert 'config-domain --type merge -p "{\\"data\\":{\\"$DOMAIN\\":\\"\\"}}"' in TEXT

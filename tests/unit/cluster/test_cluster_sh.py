"""scripts/cluster.sh, checked without starting anything: valid bash (shellcheck-clean when installed),
its pinned versions equal to the Go modules that build them, the CoreDNS manifest valid for the API
server, and the e2e test's image the one the script builds."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.support.cluster import HELLO_IMAGE
from tests.support.dockerfile import ROOT
from tests.support.kube_schemas import validate_core

SCRIPT = ROOT / "scripts" / "cluster.sh"
TEXT = SCRIPT.read_text()
MODULES = ROOT / "scripts" / "cluster"


def _constant(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", TEXT, re.MULTILINE)
    assert match, name
    return match.group(1)


def _required(module: str, path: str) -> str:
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(path)} (v\S+)", (MODULES / module / "go.mod").read_text(), re.M
    )
    assert match, (module, path)
    return match.group(1)


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (dev check)")
def test_shellcheck_clean() -> None:
    subprocess.run(["shellcheck", str(SCRIPT)], check=True)


def test_versions_match_the_modules_that_build_them() -> None:
    assert _required("kube", "k8s.io/kubernetes") == _constant("KUBE_VERSION")
    assert _required("knative", "knative.dev/serving") == _constant("KNATIVE_VERSION")
    assert _required("coredns", "github.com/coredns/coredns") == _constant("COREDNS_VERSION")
    assert _required("kn", "knative.dev/client") == _constant("KN_VERSION")
    # the staging modules follow k8s.io/kubernetes v1.X.Y as v0.X.Y
    staging = "v0." + _constant("KUBE_VERSION").split(".", 1)[1]
    replaces = re.findall(r"=> (k8s\.io/\S+) (v\S+)", (MODULES / "kube" / "go.mod").read_text())
    assert replaces and {version for _, version in replaces} == {staging}


def test_every_built_binary_is_a_tool_of_its_module() -> None:
    built = re.findall(r'go_build \S+ \S+ scripts/cluster/(\w+) "[^"]*" "?([\w./-]+)"?\n', TEXT)
    loops = re.findall(
        r"for name in ([\w -]+); do\n\s+go_build [^\n]* scripts/cluster/(\w+) [^\n]* \"([\w./-]+)/\$name\"",
        TEXT,
    )
    built += [(module, f"{prefix}/{name}") for names, module, prefix in loops for name in names.split()]
    assert len(built) >= 11, built
    for module, package in built:
        tools = re.findall(r"^(?:tool )?\s*([\w./-]+)$", (MODULES / module / "go.mod").read_text(), re.M)
        assert package in tools, (module, package)


def test_coredns_manifest_is_valid_and_forwards_nowhere() -> None:
    text = (MODULES / "manifests" / "coredns.yaml").read_text()
    text = text.replace("IMAGE", "dev.local/coredns/coredns:v1").replace("DNS_IP", "10.202.0.10")
    objects = [o for o in yaml.safe_load_all(text) if o]
    for obj in objects:
        validate_core(obj)
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert "forward" not in config["data"]["Corefile"]  # no query leaves the machine


def test_the_e2e_image_is_the_one_the_script_builds() -> None:
    assert _constant("HELLO_IMAGE") == HELLO_IMAGE


def test_down_undoes_what_up_does() -> None:
    down = TEXT[TEXT.index("cmd_down() {") :]
    for undo in (
        "remove_iptables",
        "remove_cgroups",
        'ip link del "$BRIDGE"',
        "restore_sysctls",
        "created-dirs",
    ):
        assert undo in down, undo

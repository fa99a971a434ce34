"""A small reader for the top-level Dockerfile, enough to check its contract with the manifests
statically (no Docker engine here): stages, their instructions, ENV, ARG defaults, USER, CMD."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# Image repository -> the Dockerfile target that builds it.
IMAGE_TARGETS = {"ghcr.io/pixell/par": "platform", "ghcr.io/pixell/par-runtime": "runtime"}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self, inherited: dict[str, str] | None = None) -> dict[str, str]:
        """ENV as the final image has it (`KEY=value` pairs; later lines win)."""
        env = dict(inherited or {})
        for args in self.values("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
        return env


def logical_lines(text: str) -> list[str]:
    """Instructions with backslash continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse(path: Path = DOCKERFILE) -> tuple[dict[str, str], dict[str, Stage]]:
    """(global ARG defaults, stages by name)."""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(stages))
            stage = stages[name] = Stage(name, words[0])
        elif stage is None and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value
        elif stage is not None:
            stage.instructions.append((keyword, args))
    return global_args, stages


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, base first."""
    chain = [stages[name]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def final_env(stages: dict[str, Stage], name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in lineage(stages, name):
        env = stage.env(env)
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return value


def knative_objects(folder: str) -> list[dict]:
    """Every YAML document in the files a knative/ kustomization lists as resources."""
    import yaml

    base = ROOT / "knative" / folder
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        if (base / name).is_file()
        for doc in yaml.safe_load_all((base / name).read_text())
        if doc
    ]

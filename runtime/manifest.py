"""The `agent.yaml` model: every field pixell-kit 0.4 and pixell-sdk 0.5 write, typed.

Unknown fields are kept (a newer tool may add some) and reported as warnings; wrong types are
rejected.

Versions: `AgentManifest.version` is the agent's version. `metadata.version` wins when present
(pixell-kit 0.4 and pixell-sdk 0.5 write it; their top-level `version` is the manifest format,
"1.0"); without it the top-level `version` is the agent's version, as the original Pixell runtime
read it. One of the two is required. The top-level field is `manifest_version` and dumps back as
`version`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9-]*$"


class Section(BaseModel):
    """Base of every manifest section: keep unknown keys, coerce YAML numbers to strings."""

    model_config = ConfigDict(
        extra="allow",
        coerce_numbers_to_str=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def unknown_fields(self, prefix: str = "") -> list[str]:
        """Dotted paths of every key no tool writes, in this section and below."""
        found = [f"{prefix}{key}" for key in (self.model_extra or {})]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Section):
                found += value.unknown_fields(f"{prefix}{name}.")
        return found


def _entry(value: str | None) -> str | None:
    if value is not None and ":" not in value:
        raise ValueError("must be 'module:function'")
    return value


class SubAgent(Section):
    """`metadata.sub_agents[]` (the original runtime's exports): informational here."""

    name: str
    description: str | None = None
    public: bool = True


class Metadata(Section):
    version: str | None = None
    sub_agents: list[SubAgent] = Field(default_factory=list)
    homepage: str | None = None
    repository: str | None = None
    tags: list[str] = Field(default_factory=list)
    author_email: str | None = None


class MCPConfig(Section):
    enabled: bool = False
    config_file: str | None = None


class Permissions(Section):
    required: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)


class DataAccess(Section):
    oauth_providers: list[str] = Field(default_factory=list)
    user_data: list[str] = Field(default_factory=list)
    external_apis: list[str] = Field(default_factory=list)


class PlanMode(Section):
    supported: bool = True
    phases: list[str] = Field(default_factory=list)
    discovery_type: str | None = None


class Translation(Section):
    supported: bool = True
    default_language: str = "en"
    supported_languages: list[str] = Field(default_factory=lambda: ["en"])


class A2AConfig(Section):
    """kit 0.4 writes `service`; sdk 0.5 writes `entry` (and keeps `service`) or `http_server`."""

    entry: str | None = None
    service: str | None = None
    http_server: str | None = None

    @field_validator("entry", "service", "http_server")
    @classmethod
    def _entries(cls, value: str | None) -> str | None:
        return _entry(value)

    @property
    def target(self) -> str | None:
        return self.entry or self.service or self.http_server


class RestConfig(Section):
    entry: str  # sdk 0.5 allows a bare function name: it lives in the entrypoint's module


class UIConfig(Section):
    path: str
    base_path: str = Field(default="/", alias="basePath")  # the original's mount path for the UI


class AgentManifest(Section):
    manifest_version: str | None = Field(default=None, alias="version")
    name: str = Field(pattern=NAME_PATTERN)
    display_name: str | None = None
    description: str | None = None
    author: str | None = None
    license: str | None = None
    entrypoint: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    runtime: str = "python3.11"
    environment: dict[str, str] = Field(default_factory=dict)
    dependencies: list[str] = Field(default_factory=list)
    mcp: MCPConfig | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    permissions: Permissions | None = None
    data_access: DataAccess | None = None
    http_server: str | None = None
    a2a: A2AConfig | None = None
    rest: RestConfig | None = None
    ui: UIConfig | None = None
    ui_spec_version: str | None = None
    required_ui_capabilities: list[str] | None = None
    plan_mode: PlanMode | None = None
    translation: Translation | None = None

    @field_validator("entrypoint", "http_server")
    @classmethod
    def _entries(cls, value: str | None) -> str | None:
        return _entry(value)

    @model_validator(mode="after")
    def _has_version(self) -> AgentManifest:
        if not (self.metadata.version or self.manifest_version):
            raise ValueError("no agent version: set metadata.version (or a top-level version)")
        return self

    @property
    def version(self) -> str:
        """The agent's version: `metadata.version`, else the top-level `version` (module docstring)."""
        return self.metadata.version or self.manifest_version or ""

    def entry_points(self) -> dict[str, str]:
        """Every `module:function` the package declares, by surface (rest may be a bare name)."""
        found: dict[str, str] = {}
        if self.entrypoint:
            found["entrypoint"] = self.entrypoint
        if self.rest:
            entry = self.rest.entry
            if ":" not in entry and self.entrypoint:
                entry = f"{self.entrypoint.split(':', 1)[0]}:{entry}"
            found["rest"] = entry
        if self.a2a and self.a2a.target:
            found["a2a"] = self.a2a.target
        if self.http_server:
            found["http_server"] = self.http_server
        return found

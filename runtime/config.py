"""The runtime's configuration: one settings object read from the environment.

Names follow the original Pixell runtime (`AGENT_APP_ID`, `DEPLOYMENT_ID`, `AGENT_PACKAGE_PATH`,
`PACKAGE_URL`, `PACKAGE_SHA256`, `REST_PORT`, `A2A_PORT`, `UI_PORT`, `MULTIPLEXED`, `BASE_PATH`,
`MAX_PACKAGE_SIZE_MB`, `BOOT_BUDGET_MS`, `GRACEFUL_SHUTDOWN_TIMEOUT_SEC`; docs/migrating.md says
what each one does here) and Knative's runtime contract (`PORT`, which wins over `REST_PORT`,
`K_SERVICE`, `K_REVISION`; `K_SINK` is read by `runtime.sdk` in the agent's own code); PAR's own
knobs are prefixed `PAR_`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.settingtypes import Bytes, Millis, Seconds

MiB = 1024 * 1024
_BASE_PATH = re.compile(r"^[A-Za-z0-9/_.-]+$")


def _default_work_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "par" / "runtime"


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias="PORT",
        description="HTTP port (Knative's contract); wins over REST_PORT",
    )
    rest_port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias="REST_PORT",
        description="HTTP port of the original runtime (PORT wins); default 8080",
    )
    a2a_port: int = Field(
        default=50051, ge=1, le=65535, validation_alias="A2A_PORT",
        description="gRPC port of pixell.agent.AgentService (the original's)",
    )
    ui_port: int = Field(
        default=3000, ge=1, le=65535, validation_alias="UI_PORT",
        description="The UI's own port when MULTIPLEXED is false",
    )
    multiplexed: bool = Field(
        default=True, validation_alias="MULTIPLEXED",
        description="Serve the UI on the HTTP port too (false: the UI alone on UI_PORT)",
    )
    base_path: str = Field(
        default="/", validation_alias="BASE_PATH",
        description="Every route is also served under this path prefix",
    )
    deployment_id: str | None = Field(
        default=None, validation_alias="DEPLOYMENT_ID",
        description="The original runtime's deployment id, in the start log line",
    )
    boot_budget_ms: Millis = Field(
        default=5000, gt=0, validation_alias="BOOT_BUDGET_MS",
        description="A start slower than this is logged as a warning",
    )
    max_package_size_mb: int | None = Field(
        default=None, ge=1, validation_alias="MAX_PACKAGE_SIZE_MB",
        description="The original's package size cap; PAR_APKG_MAX_BYTES wins when set",
    )
    host: str = Field(default="0.0.0.0", validation_alias="PAR_RUNTIME_HOST", description="Address to bind")
    agent_package_path: str | None = Field(
        default=None, validation_alias="AGENT_PACKAGE_PATH",
        description="The APKG file or prepared folder to serve",
    )
    package_url: str | None = Field(
        default=None, validation_alias="PACKAGE_URL",
        description="Where to download the APKG from (instead of AGENT_PACKAGE_PATH)",
    )
    package_sha256: str | None = Field(
        default=None, validation_alias="PACKAGE_SHA256",
        description="The downloaded package must have this SHA-256",
    )
    agent_app_id: str | None = Field(
        default=None, validation_alias="AGENT_APP_ID",
        description="How this instance names its agent (logs, /agents/{id}/health)",
    )
    k_service: str | None = Field(
        default=None, validation_alias="K_SERVICE", description="Set by Knative: the agent's Service"
    )
    k_revision: str | None = Field(
        default=None, validation_alias="K_REVISION", description="Set by Knative: the agent's revision"
    )

    graceful_shutdown_timeout: Seconds = Field(
        default=30.0, ge=0, validation_alias="GRACEFUL_SHUTDOWN_TIMEOUT_SEC",
        description="After SIGTERM, how long requests in flight may finish",
    )
    request_timeout: Seconds = Field(
        default=300.0, gt=0, validation_alias="PAR_REQUEST_TIMEOUT_SEC",
        description="A handler running longer answers 504 timeout",
    )
    work_dir: Path = Field(
        default_factory=_default_work_dir, validation_alias="PAR_RUNTIME_WORK_DIR",
        description="Where packages are extracted and prepared",
    )

    # Untrusted-package limits (see runtime.apkg.Limits).
    max_package_bytes: Bytes = Field(
        default=200 * MiB, ge=1, validation_alias="PAR_APKG_MAX_BYTES", description="Largest package accepted"
    )
    max_unpacked_bytes: Bytes = Field(
        default=1024 * MiB, ge=1, validation_alias="PAR_APKG_MAX_UNPACKED_BYTES",
        description="Largest total size once extracted",
    )
    max_files: int = Field(
        default=10_000, ge=1, validation_alias="PAR_APKG_MAX_FILES",
        description="Most files a package may hold",
    )
    max_ratio: float = Field(
        default=100.0, ge=1, validation_alias="PAR_APKG_MAX_RATIO",
        description="Largest compression ratio (zip bombs)",
    )

    # PACKAGE_URL download.
    download_timeout: Seconds = Field(
        default=30.0, gt=0, validation_alias="PAR_PACKAGE_URL_TIMEOUT_SEC",
        description="Timeout of one PACKAGE_URL download attempt",
    )
    download_retries: int = Field(
        default=3, ge=0, validation_alias="PAR_PACKAGE_URL_RETRIES",
        description="Download attempts before giving up",
    )

    log_level: str = Field(
        default="INFO", validation_alias="PAR_LOG_LEVEL", description="DEBUG, INFO, WARNING or ERROR"
    )

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str) -> str:
        """Normalised as the original did ('/x/' -> '/x', 'x' -> '/x'); odd characters refused."""
        path = "/" + value.strip().strip("/")
        if "//" in path or not _BASE_PATH.match(path):
            raise ValueError(f"{value!r} is not a URL path of letters, digits, '-', '_', '.' and '/'")
        return path

    @field_validator("package_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[0-9a-fA-F]{64}", value.strip()):
            raise ValueError("must be 64 hexadecimal characters")
        return value

    @model_validator(mode="after")
    def _package_size(self) -> RuntimeSettings:
        """MAX_PACKAGE_SIZE_MB (the original's cap) applies unless PAR_APKG_MAX_BYTES is set."""
        if self.max_package_size_mb and "max_package_bytes" not in self.model_fields_set:
            self.max_package_bytes = self.max_package_size_mb * MiB
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> RuntimeSettings:
        if self.http_port == self.a2a_port:
            raise ValueError(f"REST_PORT and A2A_PORT cannot be the same port ({self.a2a_port})")
        return self

    @property
    def http_port(self) -> int:
        """`PORT` (Knative), else the original's `REST_PORT`, else 8080. When PORT is A2A_PORT, the
        port is gRPC's (the `--grpc` Knative variant, whose one port is h2c) and HTTP takes
        REST_PORT, else 8080."""
        if self.port and self.port != self.a2a_port:
            return self.port
        return self.rest_port or 8080

    @property
    def a2a_port_set(self) -> bool:
        """A2A_PORT given explicitly (then a port that cannot be bound refuses the start)."""
        return "a2a_port" in self.model_fields_set

    @property
    def agent_id(self) -> str | None:
        """How this instance names its agent (logs, `/agents/{id}/health`): AGENT_APP_ID (PAR sets
        `{namespace}/{agent}` on Knative), else the Knative service (the agent's name)."""
        return self.agent_app_id or self.k_service

"""The runtime's configuration: one settings object read from the environment.

Names follow the current Pixell runtime (`AGENT_PACKAGE_PATH`, `PACKAGE_URL`, `PACKAGE_SHA256`,
`AGENT_APP_ID`) and Knative's runtime contract (`PORT`, `K_SERVICE`, `K_REVISION`; `K_SINK` is read
by `runtime.sdk` in the agent's own code); PAR's own knobs are prefixed `PAR_`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def _default_work_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "par" / "runtime"


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    port: int = Field(default=8080, validation_alias="PORT")
    host: str = Field(default="0.0.0.0", validation_alias="PAR_RUNTIME_HOST")
    agent_package_path: str | None = Field(default=None, validation_alias="AGENT_PACKAGE_PATH")
    package_url: str | None = Field(default=None, validation_alias="PACKAGE_URL")
    package_sha256: str | None = Field(default=None, validation_alias="PACKAGE_SHA256")
    agent_app_id: str | None = Field(default=None, validation_alias="AGENT_APP_ID")
    k_service: str | None = Field(default=None, validation_alias="K_SERVICE")
    k_revision: str | None = Field(default=None, validation_alias="K_REVISION")

    graceful_shutdown_timeout: float = Field(default=30.0, validation_alias="GRACEFUL_SHUTDOWN_TIMEOUT_SEC")
    request_timeout: float = Field(default=300.0, validation_alias="PAR_REQUEST_TIMEOUT_SEC")
    work_dir: Path = Field(default_factory=_default_work_dir, validation_alias="PAR_RUNTIME_WORK_DIR")

    # Untrusted-package limits (see runtime.apkg.Limits).
    max_package_bytes: int = Field(default=200 * MiB, validation_alias="PAR_APKG_MAX_BYTES")
    max_unpacked_bytes: int = Field(default=1024 * MiB, validation_alias="PAR_APKG_MAX_UNPACKED_BYTES")
    max_files: int = Field(default=10_000, validation_alias="PAR_APKG_MAX_FILES")
    max_ratio: float = Field(default=100.0, validation_alias="PAR_APKG_MAX_RATIO")

    # PACKAGE_URL download.
    download_timeout: float = Field(default=30.0, validation_alias="PAR_PACKAGE_URL_TIMEOUT_SEC")
    download_retries: int = Field(default=3, validation_alias="PAR_PACKAGE_URL_RETRIES")

    log_level: str = Field(default="INFO", validation_alias="PAR_LOG_LEVEL")

    @property
    def agent_id(self) -> str | None:
        """How this instance names its agent in logs: the app id, else the Knative service."""
        return self.agent_app_id or self.k_service

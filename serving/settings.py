"""The local Knative Serving's one settings object, read from the environment (`PAR_` prefix).
Names follow Knative's autoscaler where one exists (stable window, max scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime import quantity
from runtime.settingtypes import Bytes, Quantity, Seconds

from .types import Limits

Port = Annotated[int, Field(ge=1, le=65535)]


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAR_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".par")
    # Knative's stable window: an instance idle this long is stopped (down to min-scale).
    scale_to_zero_after: Seconds = Field(60.0, gt=0)
    # Knative caps nothing when max-scale is 0; one machine needs a bound.
    max_instances_per_revision: int = Field(10, ge=1)
    # How long a starting instance may take to answer /readyz before the start counts as failed.
    instance_start_timeout: Seconds = Field(60.0, gt=0)
    # How long a request may queue for a free slot (containerConcurrency) or a start.
    request_queue_timeout: Seconds = Field(120.0, gt=0)
    # Crash replacement backoff: 0 for the first failure, then this doubling up to the cap.
    restart_backoff_initial: Seconds = Field(0.5, gt=0)
    restart_backoff_max: Seconds = Field(10.0, gt=0)
    # Grace period between SIGTERM and SIGKILL when an instance is stopped.
    instance_stop_grace: Seconds = Field(5.0, ge=0)
    # Fork instances from a pre-started runtime template (imports done once): faster cold starts.
    prefork: bool = True
    # Confinement (sandbox.py): `auto` confines with what the kernel has (and says what it lacks),
    # `required` refuses to start instances it cannot confine.
    isolation: Literal["auto", "required"] = "auto"
    # TCP ports an instance may connect to anywhere, besides the gateway and its K_SINK (DNS,
    # HTTP, HTTPS by default); every other port, loopback included, is refused.
    outbound_ports: Annotated[tuple[Port, ...], NoDecode] = (53, 80, 443)
    # Limits for a deployment that sets none (the same defaults as the Knative manifests').
    instance_memory_limit: Quantity = "1Gi"
    instance_cpu_limit: Quantity = "1"
    # Preparing a package (`par runtime prepare`: extraction, its requirements' installation and
    # build code) runs confined like an instance, within these limits.
    prepare_timeout: Seconds = Field(900.0, gt=0)
    prepare_memory_limit: Quantity = "2Gi"
    prepare_cpu_limit: Quantity = "1"
    prepare_max_processes: int = Field(256, ge=1)

    # Each revision's instance output (`<data dir>/logs/`, read by `par logs`) is rotated when
    # it would grow over this size (the kubelet's containerLogMaxSize).
    log_max_bytes: Bytes = Field(10 * 2**20, gt=0)
    # Rotated files kept per revision (`.log.1` newest ... `.log.N`); older lines are dropped.
    log_max_files: int = Field(5, ge=0)

    @field_validator("outbound_ports", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        """`53,80,443` as the environment writes it."""
        if isinstance(value, str):
            return tuple(int(p) for p in value.replace(" ", "").split(",") if p)
        return value

    def prepare_limits(self) -> Limits:
        return Limits(
            memory_bytes=quantity.to_bytes(self.prepare_memory_limit),
            cpu_millis=quantity.to_millicores(self.prepare_cpu_limit),
            max_processes=self.prepare_max_processes,
        )

    def default_limits(self) -> Limits:
        return Limits(
            memory_bytes=quantity.to_bytes(self.instance_memory_limit),
            cpu_millis=quantity.to_millicores(self.instance_cpu_limit),
        )

"""The eventing component's one settings object (environment variables, Knative names where they exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.settingtypes import Bytes, Millis, Seconds

# Knative's own Broker/Trigger CRDs ship with the package, so an installed `par` validates as a checkout does.
PACKAGED_CRDS = Path(__file__).resolve().parent / "crds"


class EventingSettings(BaseSettings):
    """Broker ingress, trigger dispatcher and Kafka connection settings."""

    model_config = SettingsConfigDict(extra="ignore")

    # Kafka: unset means "start the embedded Tansu broker".
    kafka_bootstrap_servers: str | None = Field(default=None, alias="KAFKA_BOOTSTRAP_SERVERS")
    # A managed Kafka: TLS and SASL for every client (producer, consumers, admin); see docs/eventing.md.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_ssl_ca_file: Path | None = Field(default=None, alias="KAFKA_SSL_CA_FILE")  # else the system CAs
    kafka_ssl_cert_file: Path | None = Field(default=None, alias="KAFKA_SSL_CERT_FILE")  # client cert (mTLS)
    kafka_ssl_key_file: Path | None = Field(default=None, alias="KAFKA_SSL_KEY_FILE")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    port: int = Field(default=8080, ge=1, le=65535, alias="PORT")
    config: Path | None = Field(default=None, alias="PAR_EVENTING_CONFIG")
    service_url_template: str = Field(
        default="http://{name}.{namespace}.svc.cluster.local", alias="PAR_EVENTING_SERVICE_URL_TEMPLATE"
    )
    crds_dir: Path = Field(default=PACKAGED_CRDS, alias="PAR_EVENTING_CRDS_DIR")
    # Ingress: bounded body and bounded time before a 503.
    max_body_bytes: Bytes = Field(default=4 * 1024 * 1024, ge=1, alias="PAR_EVENTING_MAX_BODY_BYTES")
    produce_timeout: Seconds = Field(default=3.0, gt=0, alias="PAR_EVENTING_PRODUCE_TIMEOUT")
    # Topics: Knative's kafka-broker-config defaults (replication capped by the cluster size).
    default_partitions: int = Field(default=10, ge=1, alias="PAR_EVENTING_DEFAULT_PARTITIONS")
    default_replication: int = Field(default=3, ge=1, le=32767, alias="PAR_EVENTING_DEFAULT_REPLICATION")
    # Dispatcher.
    max_in_flight: int = Field(default=64, ge=1, alias="PAR_EVENTING_MAX_IN_FLIGHT")
    delivery_timeout: Seconds = Field(default=600.0, gt=0, alias="PAR_EVENTING_DELIVERY_TIMEOUT")
    commit_interval: Seconds = Field(default=0.1, gt=0, alias="PAR_EVENTING_COMMIT_INTERVAL")
    # Where clients reach the ingress (Broker status.address.url); default http://127.0.0.1:{PORT}.
    ingress_url: str | None = Field(default=None, alias="PAR_EVENTING_INGRESS_URL")
    # How long the broker may hold an empty fetch. 0: chosen for the broker (eventing.dispatcher
    # .Dispatcher.start): 500 on Kafka, which answers as soon as a record arrives; 25 on Tansu.
    fetch_max_wait_ms: Millis = Field(default=0, ge=0, alias="PAR_EVENTING_FETCH_MAX_WAIT_MS")
    # The built-in dead-letter store (a SQLite file): set, `/dead-letters` serves it and it takes the
    # dead letters of every Trigger without a deadLetterSink (par up sets it in its data folder).
    dead_letters: Path | None = Field(default=None, alias="PAR_EVENTING_DEAD_LETTERS")
    # When set, the admin API requires `Authorization: Bearer <token>` (the ingress stays open, as Knative's).
    admin_token: str | None = Field(default=None, alias="PAR_EVENTING_ADMIN_TOKEN")
    # Without a token the admin API and the dead-letter store refuse to start unless this says that
    # anyone who reaches them may read, change, redrive and purge (`--insecure-no-auth`).
    insecure_no_auth: bool = Field(default=False, alias="PAR_EVENTING_INSECURE_NO_AUTH")


def missing_token(token: str | None, insecure: bool, what: str) -> str | None:
    """The one line a serve command stops with when it would run unauthenticated by accident."""
    if token or insecure:
        return None
    return (f"PAR_EVENTING_ADMIN_TOKEN is not set: {what} would answer anyone. Set it, or pass "
            "--insecure-no-auth (PAR_EVENTING_INSECURE_NO_AUTH=true) to run it unauthenticated")

"""Kafka for tests: the embedded Tansu broker (eventing.embedded) and a real Apache Kafka 4.x.

The real one is Kafka's own broker from the Maven Central jars that scripts/kafka.sh copies to
`.cache/kafka/lib`, in KRaft combined mode (one process is controller and broker) on free loopback
ports, 256 MiB of heap, logs in a temporary directory. Besides PLAINTEXT it listens with TLS
(client certificate required) and SASL_SSL (PLAIN and SCRAM-SHA-512), with a self-signed CA made
here, so the managed-Kafka settings are tested against the real thing.

Session fixture `kafka_bootstrap` -> "host:port", parametrized `tansu` / `kafka`: every eventing
integration test runs on both. Topics and consumer groups are shared by the whole session, so
tests use their own broker/trigger names. With KAFKA_BOOTSTRAP_SERVERS set, the `kafka` variant
uses that cluster instead of starting one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import IO

import pytest

from eventing.embedded import EmbeddedKafka, metadata_answers
from tests.conftest import require_service
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / ".cache" / "kafka" / "lib"
SASL_USER, SASL_PASSWORD = "par", "par-secret"
KINDS = ("tansu", "kafka")


def kafka_installed() -> bool:
    return shutil.which("java") is not None and any(LIB.glob("kafka_2.13-*.jar"))


@dataclass(frozen=True)
class Tls:
    """PEM files of a throwaway CA, the broker's certificate and a client certificate."""

    ca: Path
    server: Path  # private key + certificate chain, Kafka's PEM keystore
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, folder: Path) -> Tls:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        def name(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        now = datetime.now(UTC)

        def issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                  signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
            builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
                       .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            if not ca:
                builder = builder.add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
            return builder.sign(signer, hashes.SHA256())

        def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        def pem_cert(cert: x509.Certificate) -> bytes:
            return cert.public_bytes(serialization.Encoding.PEM)

        ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        ca = issue("par-test-ca", ca_key, name("par-test-ca"), ca_key, ca=True)
        server = issue("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
        client = issue("par-client", client_key, ca.subject, ca_key, ca=False)
        out = cls(folder / "ca.pem", folder / "server.pem", folder / "client.pem", folder / "client.key")
        out.ca.write_bytes(pem_cert(ca))
        out.server.write_bytes(pem_key(server_key) + pem_cert(server) + pem_cert(ca))
        out.client_cert.write_bytes(pem_cert(client))
        out.client_key.write_bytes(pem_key(client_key))
        return out


class RealKafka:
    """Apache Kafka (KRaft, combined mode) on loopback: `start()`, `kill()` / `stop()`, `start()` again
    on the same ports and log directory (what it stored survives, as on any real Kafka)."""

    def __init__(self, workdir: Path, tls: Tls | None = None) -> None:
        self.workdir = workdir
        self.tls = tls
        self.port, self.controller_port = free_port(), free_port()
        self.ssl_port, self.sasl_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.properties = workdir / "server.properties"
        self.log_file = workdir / "kafka.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        listeners = {"PLAINTEXT": self.port, "CONTROLLER": self.controller_port}
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.workdir / 'data'}",
            "num.partitions=1",
            # single-node settings, as Kafka's own config/server.properties has them
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            # a SIGKILLed node restarting re-registers once its old session expired (default 9 s)
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=1000",
        ]
        if self.tls:
            listeners |= {"SSL": self.ssl_port, "SASL_SSL": self.sasl_port}
            plain = (f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                     f'user_{SASL_USER}="{SASL_PASSWORD}";')
            lines += [
                "ssl.keystore.type=PEM", f"ssl.keystore.location={self.tls.server}",
                "ssl.truststore.type=PEM", f"ssl.truststore.location={self.tls.ca}",
                "listener.name.ssl.ssl.client.auth=required",
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
                f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain}",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ]
        lines += [
            "listeners=" + ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items()),
            "advertised.listeners=" + ",".join(
                f"{name}://127.0.0.1:{port}" for name, port in listeners.items() if name != "CONTROLLER"),
            "listener.security.protocol.map=" + ",".join(
                f"{name}:{'PLAINTEXT' if name == 'CONTROLLER' else name}" for name in listeners),
        ]
        return "\n".join(lines) + "\n"

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", "-cp", f"{LIB}/*", main, *args]

    def _format(self) -> None:
        """`kafka-storage format --standalone` once: a random cluster id, this node the only voter."""
        self.properties.write_text(self._config())
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        user = f"SCRAM-SHA-512=[name={SASL_USER},password={SASL_PASSWORD}]"
        scram = ["--add-scram", user] if self.tls else []
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",
                       "-c", str(self.properties), *scram, heap="128m"),
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed: {(result.stdout + result.stderr)[-2000:]}")

    def start(self, timeout: float = 90.0) -> RealKafka:
        if not (self.workdir / "data" / "meta.properties").exists():
            self._format()
        self._log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.properties)),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not asyncio.run(metadata_answers(self.bootstrap)):
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                message = f"Kafka did not answer on {self.bootstrap} within {timeout}s: {self.tail()}"
                raise TimeoutError(message)
            time.sleep(0.2)
        return self

    def tail(self, size: int = 3000) -> str:
        return self.log_file.read_bytes()[-size:].decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crashed or OOM-killed broker."""
        self._end(signal.SIGKILL, 0)

    def stop(self, grace: float = 20.0) -> None:
        self._end(signal.SIGTERM, grace)

    def _end(self, sig: int, grace: float) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(grace or 10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        if self.process:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            os.killpg(self.process.pid, signal.SIGCONT)


def _require_kafka() -> None:
    require_service(kafka_installed(), "Apache Kafka (java and the jars of scripts/kafka.sh)")


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealKafka]:
    """The session's real Kafka (PLAINTEXT, SSL and SASL_SSL listeners)."""
    _require_kafka()
    workdir = tmp_path_factory.mktemp("kafka")
    kafka = RealKafka(workdir, Tls.create(workdir)).start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session", params=KINDS)
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "kafka":
        yield os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or request.getfixturevalue("kafka_server").bootstrap
        return
    broker = EmbeddedKafka()
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def kafka_kind(request: pytest.FixtureRequest, kafka_bootstrap: str) -> str:
    """`tansu` or `kafka`: which broker this run of the test is on."""
    return str(request.node.callspec.params["kafka_bootstrap"])


@pytest.fixture
def embedded_kafka() -> Iterator[EmbeddedKafka]:
    """A private embedded broker for tests that stop or freeze it (fault injection)."""
    broker = EmbeddedKafka()
    broker.start()
    try:
        yield broker
    finally:
        broker.resume()
        broker.stop()


@pytest.fixture
def real_kafka(tmp_path: Path) -> Iterator[RealKafka]:
    """A private real Kafka for tests that kill, freeze or restart it."""
    _require_kafka()
    kafka = RealKafka(tmp_path / "kafka")
    kafka.workdir.mkdir()
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.resume()
        kafka.stop()

"""`par eventing serve`: settings, optional embedded Kafka, config file, then uvicorn."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from eventing.kafka import KafkaSettingsError, client_options
from runtime.jsonlog import configure
from runtime.settingtypes import describe

if TYPE_CHECKING:
    from eventing.settings import EventingSettings

log = logging.getLogger("eventing.server")


class ConfigError(ValueError):
    pass


def check_config(path: Path, crds_dir: Path) -> list[dict]:
    """Read and validate every object before anything starts, so a bad file fails fast and clearly."""
    from eventing.app import load_config
    from eventing.objects import InvalidObject, parse_broker, parse_trigger

    try:
        objects = load_config(path)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except InvalidObject as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for i, obj in enumerate(objects):
        parse = {"Broker": parse_broker, "Trigger": parse_trigger}.get(str(obj.get("kind")))
        if parse is None and obj.get("kind") != "ConfigMap":
            raise ConfigError(f"{path}: document {i}: kind must be Broker, Trigger or ConfigMap")
        try:
            if parse is not None:
                parse(obj, crds_dir)
        except InvalidObject as exc:
            name = (obj.get("metadata") or {}).get("name")
            raise ConfigError(f"{path}: {obj.get('kind')} {name!r}: {exc}") from None
    return objects


def settings_error(exc: ValidationError | KafkaSettingsError) -> str:
    """One line naming the variable, never a traceback."""
    if isinstance(exc, KafkaSettingsError):
        return str(exc)
    from eventing.settings import EventingSettings

    return describe(exc, EventingSettings)


async def kafka_problem(settings: EventingSettings, bootstrap: str) -> str | None:
    """Why the Kafka at `bootstrap` cannot be reached (with the configured TLS/SASL), or None."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its own error line would repeat ours
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **client_options(settings))
    try:
        await client.bootstrap()
    except KafkaError as exc:
        return f"cannot reach Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS): {exc}"
    finally:
        await client.close()
        quiet.setLevel(level)
    return None


def run(
    config: Path | None, port: int | None, host: str, ingress: bool, dispatcher: bool, insecure: bool = False
) -> int:
    import uvicorn

    from eventing.app import create_app
    from eventing.embedded import EmbeddedKafka
    from eventing.settings import EventingSettings, missing_token

    configure("eventing")
    try:
        settings = EventingSettings()
        client_options(settings)
    except (ValidationError, KafkaSettingsError) as exc:
        message = settings_error(exc)
        print(f"par eventing serve: {message}", file=sys.stderr)
        return 2
    settings.insecure_no_auth = insecure or settings.insecure_no_auth  # the flag, for the app too
    refusal = missing_token(settings.admin_token, settings.insecure_no_auth, "the admin API")
    if refusal:
        print(f"par eventing serve: {refusal}", file=sys.stderr)
        return 2
    if port is not None:
        settings.port = port
    path = config or settings.config
    try:
        objects = check_config(path, settings.crds_dir) if path else []
    except ConfigError as exc:
        log.error("invalid configuration", extra={"error": str(exc)})
        print(f"error: {exc}")
        return 2
    embedded = None
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        if settings.kafka_security_protocol != "PLAINTEXT":
            print("error: KAFKA_SECURITY_PROTOCOL: needs KAFKA_BOOTSTRAP_SERVERS (the embedded broker is "
                  "plaintext only)")
            return 2
        embedded = EmbeddedKafka()
        bootstrap = embedded.start()
    else:
        problem = asyncio.run(kafka_problem(settings, bootstrap))
        if problem:  # one line here, rather than the traceback of a failed start
            print(f"par eventing serve: {problem}", file=sys.stderr)
            return 1
    try:
        app = create_app(settings, bootstrap, objects=objects, ingress_enabled=ingress,
                         dispatcher_enabled=dispatcher)
        uvicorn.run(app, host=host, port=settings.port, log_config=None, access_log=False)
    finally:
        if embedded:
            embedded.stop()
    return 0

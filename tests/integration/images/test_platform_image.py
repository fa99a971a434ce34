"""The platform image running the commands knative/ gives it (registry, gateway as ext_authz, eventing
with its embedded broker), with the Deployments' security context: UID 10001, read-only root, /tmp
writable, no capabilities."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.integration.images.conftest import UID, Container, Images, _ulimits, podman
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]


def _key() -> str:
    """A PAR API key in the shape the registry accepts (par_<12 hex>_<43 chars>)."""
    return f"par_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def test_registry_and_gateway_serve_from_the_platform_image(
    images: Images, containers: list[Container]
) -> None:
    assert podman("image", "inspect", "--format", "{{.Config.User}}", images.platform).stdout.strip() == UID
    # The wheel's package data reached the image through the link cli/up/examples -> examples/.
    probe = "import cli.up, os; print(os.listdir(os.path.join(cli.up.__path__[0], 'examples')))"
    listed = podman("run", "--rm", "--network", "none", *_ulimits(), images.platform, "python", "-c", probe)
    assert "demo-agent" in listed.stdout, listed
    admin, gateway_key = _key(), _key()
    registry_port, gateway_port = free_port(), free_port()
    registry = Container(
        images.platform,
        {"PAR_DATA_DIR": "/tmp/par", "PAR_ADMIN_KEY": admin, "PAR_GATEWAY_KEY": gateway_key},
        ["par", "registry", "serve", "--host", "127.0.0.1", "--port", str(registry_port)],
    )
    containers.append(registry)
    registry_url = f"http://127.0.0.1:{registry_port}"
    registry.wait_http(f"{registry_url}/readyz", timeout=90)
    assert httpx.get(f"{registry_url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{registry_url}/metrics", timeout=5).status_code == 200

    gateway = Container(
        images.platform,
        {
            "PAR_GATEWAY_HOST": "127.0.0.1",
            "PORT": str(gateway_port),
            "PAR_GATEWAY_DOMAIN": "127.0.0.1.sslip.io",
            "PAR_REGISTRY_URL": registry_url,
            "PAR_GATEWAY_REGISTRY_KEY": gateway_key,
            "PAR_GATEWAY_REFRESH_INTERVAL": "2",
        },
        ["par", "gateway", "serve", "--mode", "authz"],
    )
    containers.append(gateway)
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway.wait_http(f"{gateway_url}/readyz", timeout=90)  # ready once it read the registry's keys
    assert httpx.get(f"{gateway_url}/healthz", timeout=5).status_code == 200
    # An ext_authz check as Envoy sends it: no credentials -> denied with 401.
    check = httpx.get(
        f"{gateway_url}/invoke", headers={"Host": "demo-agent.default.127.0.0.1.sslip.io"}, timeout=10
    )
    assert check.status_code == 401, check.text


def test_eventing_serves_from_the_platform_image_with_its_embedded_broker(
    images: Images, containers: list[Container]
) -> None:
    port = free_port()
    eventing = Container(
        images.platform,
        {"PAR_EVENTING_ADMIN_TOKEN": secrets.token_urlsafe(16)},
        ["par", "eventing", "serve", "--host", "127.0.0.1", "--port", str(port)],
    )
    containers.append(eventing)
    base = f"http://127.0.0.1:{port}"
    eventing.wait_http(f"{base}/readyz", timeout=120)
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    event = {"specversion": "1.0", "id": "1", "source": "/t", "type": "t"}
    # The ingress answers as Knative's Kafka broker does: no such broker here.
    assert httpx.post(f"{base}/default/none", json=event, timeout=10).status_code == 404

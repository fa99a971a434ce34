"""Root test configuration. Component fixtures live in tests/support/ and are registered here."""

import os

import pytest

pytest_plugins: list[str] = [
    "tests.support.apkgs",
    "tests.support.postgres",
    "tests.support.registry",
    "tests.support.kafka",
    "tests.support.redis",
    "tests.support.kube_apiserver",
]


def require_service(available: bool, what: str, installer: str = "scripts/services.sh") -> None:
    """Skip a test whose external service is missing on a user's machine; in CI it must exist."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI ({installer} installs it)")
    pytest.skip(f"{what} not installed here (run {installer})")

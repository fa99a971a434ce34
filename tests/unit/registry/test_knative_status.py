"""How a Knative Service's status becomes the registry's: what `par deploy` waits on."""

from __future__ import annotations

from registry.backends.knative import status_from_service
from registry.spec import Phase


def _service(conditions: list[dict], generation: int = 2, observed: int = 2, url: str | None = None) -> dict:
    status: dict = {"observedGeneration": observed, "conditions": conditions}
    if url:
        status["url"] = url
    return {
        "metadata": {"generation": generation, "annotations": {"par.pixell.ai/generation": "7"}},
        "status": status,
    }


def test_absent_ready_failed_and_unknown() -> None:
    assert status_from_service(None).phase is Phase.absent
    ready = status_from_service(
        _service([{"type": "Ready", "status": "True"}], url="http://a.ns.example.com")
    )
    assert (ready.phase, ready.url, ready.generation) == (Phase.ready, "http://a.ns.example.com", 7)
    failed = status_from_service(
        _service([{"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "image pull"}])
    )
    assert (failed.phase, failed.message) == (Phase.failed, "RevisionFailed: image pull")
    rolling = status_from_service(_service([{"type": "Ready", "status": "Unknown", "message": "waiting"}]))
    assert (rolling.phase, rolling.message, rolling.url) == (Phase.deploying, "waiting", None)


def test_a_status_for_an_older_spec_is_not_trusted() -> None:
    """Ready=True observed for generation 1 says nothing about the generation 2 just applied."""
    stale = status_from_service(
        _service([{"type": "Ready", "status": "True"}], generation=2, observed=1, url="http://x")
    )
    assert (stale.phase, stale.url) == (Phase.deploying, None)


def test_only_the_conditions_users_follow_are_kept() -> None:
    status = status_from_service(
        _service(
            [
                {"type": "Ready", "status": "True"},
                {"type": "ConfigurationsReady", "status": "True"},
                {"type": "SomethingInternal", "status": "True"},
            ]
        )
    )
    assert [c.type for c in status.conditions] == ["Ready", "ConfigurationsReady"]

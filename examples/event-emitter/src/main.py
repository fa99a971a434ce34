"""Emit one CloudEvent per invocation to the agent's broker (`K_SINK`, set by the platform)."""

import os

from runtime.sdk import emit


def handler(context):
    """Send `{"message": ..., "from": "event-emitter"}` as a `par.demo.greeting` event."""
    data = {"message": context.get("message", "hello"), "from": "event-emitter"}
    response = emit(
        os.environ.get("EMITTER_EVENT_TYPE", "par.demo.greeting"),
        data,
        source=os.environ.get("EMITTER_SOURCE", "par/examples/event-emitter"),
    )
    return {"emitted": data, "broker_status": response.status_code}

"""Entrypoint whose behaviour the test picks with `context["do"]`."""

import os
import time

from runtime.sdk import emit, trace_headers


def handler(context):
    action = context.get("do")
    if action == "raise":
        raise RuntimeError("boom from the handler")
    if action == "sleep":
        time.sleep(float(context["seconds"]))
        return {"slept": context["seconds"]}
    if action == "env":
        return {k: os.environ.get(k) for k in context["names"]}
    if action == "emit":
        response = emit("com.example.testbed.emitted", {"from": "handler"}, subject="s1")
        return {"sink_status": response.status_code}
    if action == "trace":  # what an outbound call of the handler would carry
        return trace_headers()
    if action == "unserializable":
        return {"value": object()}
    return {"echo": context}

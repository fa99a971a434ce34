"""A2A actions (async, as the design expects)."""

import asyncio

from runtime.sdk import trace_headers


async def add(params):
    """Add two numbers."""
    return {"sum": params["a"] + params["b"]}


async def nap(params):
    await asyncio.sleep(float(params["seconds"]))
    return {"napped": params["seconds"]}


async def fail(params):
    raise ValueError("action failed on purpose")


async def trace(params):
    """The trace context an outbound call of this action would carry."""
    return trace_headers()


def serve():
    return {"custom_handlers": {"add": add, "nap": nap, "fail": fail, "trace": trace}}

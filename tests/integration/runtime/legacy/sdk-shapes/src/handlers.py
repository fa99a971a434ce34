"""a2a.http_server: custom handlers (sync) and streaming handlers (async generators)."""

import asyncio


def reverse(params):
    """Reverse `text`."""
    return {"reversed": str(params.get("text", ""))[::-1]}


async def wait(params):
    """Sleep `seconds` (long enough to be canceled)."""
    await asyncio.sleep(float(params.get("seconds", 30)))
    return {"waited": True}


async def count(params):
    """Stream the numbers 1..n."""
    for i in range(1, int(params.get("n", 3)) + 1):
        await asyncio.sleep(0)
        yield {"n": i}


async def explode(params):
    yield {"n": 1}
    raise RuntimeError("stream broke")


def handlers():
    return {
        "custom_handlers": {"reverse": reverse, "wait": wait},
        "streaming_handlers": {"count": count, "explode": explode},
    }

"""A2A surface: events of type `*.greeting` land in `greeting` (the runtime maps the type)."""

from src.inbox import record


async def greeting(params):
    record(params)
    return None  # no reply event


def serve():
    return {"custom_handlers": {"greeting": greeting}}

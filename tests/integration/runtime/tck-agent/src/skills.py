"""A2A skills of the TCK agent (the agent card lists them)."""


async def echo(params):
    """Echo the params back."""
    return {"echo": params}


def serve():
    return {"custom_handlers": {"echo": echo}}

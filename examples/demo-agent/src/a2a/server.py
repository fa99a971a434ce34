"""A2A surface: a zero-argument factory returning the actions other agents may call."""


async def greet(params):
    return {"greeting": f"Hello, {params.get('name', 'world')}!"}


async def echo(params):
    return {"echo": params}


def serve():
    return {"custom_handlers": {"greet": greet, "echo": echo}}

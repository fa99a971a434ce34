"""The original runtime's shape: an object whose `custom_handlers` maps actions to handlers."""

import asyncio


class Service:
    def __init__(self):
        self.custom_handlers = {"calculate": self.calculate, "shout": self.shout, "fail": self.fail}

    async def calculate(self, parameters):
        """Add a and b."""
        await asyncio.sleep(0)
        return {"result": float(parameters.get("a", 0)) + float(parameters.get("b", 0))}

    def shout(self, parameters):
        """Upper-case `text` (a sync handler)."""
        return str(parameters.get("text", "")).upper()

    async def fail(self, parameters):
        raise RuntimeError("it broke")


def create_grpc_server():
    return Service()

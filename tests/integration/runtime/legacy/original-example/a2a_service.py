"""Imports grpc at module level and returns an object with custom_handlers, as the original's example."""

import grpc  # noqa: F401  (the original's example does; the runtime image must have grpcio)


def create_grpc_server():
    class ExampleService:
        def __init__(self):
            self.custom_handlers = {"calculate": self.calculate, "process_data": self.process_data}

        async def calculate(self, parameters):
            a, b = float(parameters.get("a", 0)), float(parameters.get("b", 0))
            return {"operation": "add", "a": a, "b": b, "result": a + b}

        async def process_data(self, parameters):
            return f"Processed data: {parameters.get('data', '').upper()}"

    return ExampleService()

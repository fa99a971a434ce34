"""Like pixell-sdk's AgentServer: an object whose `.app` is the FastAPI app, built by a factory."""

from fastapi import FastAPI


class Server:
    def __init__(self):
        self._app = FastAPI()

        @self._app.get("/hello")
        async def hello():
            return {"from": "http_server"}

    @property
    def app(self):
        return self._app


def create_server():
    return Server()

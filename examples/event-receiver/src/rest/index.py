"""REST surface: `GET /api/received` lists the events this instance received."""

from fastapi import FastAPI

from src.inbox import RECEIVED


def mount(app: FastAPI) -> None:
    @app.get("/api/received")
    async def received():
        return {"received": list(RECEIVED)}

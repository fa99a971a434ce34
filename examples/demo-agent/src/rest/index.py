"""REST surface: `rest.entry` is called once with the runtime's FastAPI app."""

import os

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    @app.get("/api/hello")
    async def hello():
        return {"message": "Hello from REST"}

    @app.get("/api/greeting")
    async def greeting():
        """Shows which environment layer won (`.env` < agent.yaml < deploy.json < process)."""
        return {"greeting": os.environ.get("DEMO_GREETING"), "source": os.environ.get("DEMO_SOURCE")}

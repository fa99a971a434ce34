from fastapi import FastAPI
from pydantic import BaseModel


class CalculateRequest(BaseModel):
    a: float
    b: float


def mount(app: FastAPI):
    @app.get("/api/status")
    async def status():
        return {"status": "running", "surfaces": ["rest", "a2a", "ui"]}

    @app.post("/api/calculate")
    async def calculate(request: CalculateRequest):
        return {"result": request.a + request.b}

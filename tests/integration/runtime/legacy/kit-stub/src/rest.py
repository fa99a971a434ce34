from fastapi import APIRouter, FastAPI


def mount(app: FastAPI):
    """Returns a router of its own and also uses the app (as `pixell dev` passes it)."""
    app.state.mounted = True
    router = APIRouter(prefix="/api")

    @router.get("/ping")
    async def ping():
        return {"pong": True}

    return router

"""Written for the original runtime, which passed an APIRouter: uses router-only attributes."""


def mount(router):
    @router.get(f"{router.prefix}/api/status")
    async def status():
        return {"status": "running", "tags": list(router.tags)}

    @router.post("/api/echo")
    async def echo(body: dict):
        return {"echo": body}

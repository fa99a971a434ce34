"""The package's own ASGI app (`http_server`), mounted as the runtime's catch-all. Its lifespan
must run although it is mounted."""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

state = {"started": False}


@asynccontextmanager
async def lifespan(app):
    state["started"] = True
    yield


async def ping(request):
    return JSONResponse({"pong": True, "path": request.url.path, "started": state["started"]})


app = Starlette(routes=[Route("/web/ping", ping)], lifespan=lifespan)

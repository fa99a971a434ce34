"""The package's own ASGI app (`http_server`), mounted as the runtime's catch-all."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ping(request):
    return JSONResponse({"pong": True, "path": request.url.path})


app = Starlette(routes=[Route("/web/ping", ping)])

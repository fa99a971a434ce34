"""The package's ASGI app: under `/echo/` it answers with the method, path, headers and body size
that reached the agent, and counts them, so a test can prove what the ingress let through
(`/echo-seen` reads the counts without being counted)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

seen: dict = {"requests": 0, "by_authorization": {}}


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    seen["requests"] += 1
    authorization = request.headers.get("authorization", "")
    seen["by_authorization"][authorization] = seen["by_authorization"].get(authorization, 0) + 1
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "headers": {name: value for name, value in request.headers.items()},
            "body_bytes": len(body),
        }
    )


async def counts(request: Request) -> JSONResponse:
    return JSONResponse(seen)


app = Starlette(
    routes=[
        Route("/echo-seen", counts),
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT"]),
    ]
)

"""Call package code safely: sync functions in the thread pool, async ones awaited, both bounded by
the request timeout. A failure becomes a `HandlerFailed`, answered as a problem+json body."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtime.problem import problem

log = logging.getLogger("runtime.invoke")


class HandlerFailed(Exception):
    """The package's code raised or ran too long. `status` is 500 or 504."""

    def __init__(self, status: int, code: str, message: str, exc_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.exc_type = status, code, message, exc_type

    def problem(self) -> dict[str, Any]:
        """RFC 9457 body (`runtime.problem`); the exception's class name as `exception_type`."""
        extra = {"exception_type": self.exc_type} if self.exc_type else {}
        return problem(self.status, self.code, self.message, **extra)


_running: set[int] = set()  # ids of sync calls executing in worker threads

# A plain executor through `loop.run_in_executor`: the same bounded pool of threads as anyio's
# default limiter (40), without its per-call limiter and checkpoint bookkeeping. Idle threads are
# reused before new ones start, so a light load keeps few threads contending for the GIL.
_pool = ThreadPoolExecutor(max_workers=40, thread_name_prefix="par-handler")


def threads_still_running() -> int:
    """Sync handlers still executing (e.g. past their timeout): Python cannot cancel them."""
    return len(_running)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    def tracked() -> Any:
        token = id(args)
        _running.add(token)  # set.add/discard are atomic under the GIL
        try:
            return fn(*args)
        finally:
            _running.discard(token)

    context = contextvars.copy_context()  # the handler sees the request's context variables
    return await asyncio.get_running_loop().run_in_executor(_pool, context.run, tracked)


async def call(fn: Callable[..., Any], *args: Any, time_limit: float, what: str) -> Any:
    """Run `fn(*args)` within `time_limit` seconds. A sync function that times out keeps its thread
    until it returns (Python cannot kill it), but the caller gets its 504 on time."""
    deadline = asyncio.timeout(time_limit)  # no extra task per call, unlike wait_for
    try:
        async with deadline:
            if inspect.iscoroutinefunction(fn):
                result = await fn(*args)
            else:
                result = await _in_thread(fn, *args)
                if inspect.isawaitable(result):
                    result = await result
    except Exception as exc:
        if deadline.expired():
            log.warning("%s timed out after %ss", what, time_limit)
            raise HandlerFailed(504, "timeout", f"{what} did not finish within {time_limit:g}s") from None
        log.exception("%s raised %s", what, type(exc).__name__)
        raise HandlerFailed(500, "handler_error", f"{what} raised: {exc}", type(exc).__name__) from exc
    return result
